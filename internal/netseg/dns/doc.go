// Package dns is the name server that strata runs for its network segments:
// one listener per segment, on the segment's gateway address, port 53, UDP
// and TCP. Instances find it through the resolv.conf that ResolvConf writes.
//
// # Terms
//
//   - Segment, gateway, instance: as in package netseg. The server of
//     segment S is the listener on S's gateway; a query "comes from S" when
//     it reaches that listener.
//   - Name: a DNS label that the record table maps to addresses in a
//     segment: a workload name ("web", the addresses of its running
//     instances) or an instance ID ("web-0"). The caller decides which names
//     exist: Set replaces the whole table (Records) at once.
//   - Known segment: a segment named in the table (Records.Names or
//     Records.Egress), or the segment being served.
//   - Strata name: a query name of one label ("web."), looked up in the
//     segment the query comes from, or of two labels whose second is a known
//     segment ("web.back."), looked up in that segment. Lookups ignore case.
//     The server is authoritative for strata names: an unknown one is
//     NXDOMAIN, a known one asked for a type it has no records of (AAAA,
//     MX, ...) is NOERROR without answers. A one-label name that is a known
//     segment ("back.") exists, without records. Answers carry a short TTL
//     (Options.TTL, 5 s by default), since instances come and go, and list
//     a name's addresses in an order that rotates from query to query.
//   - Other names: everything else ("example.com.", "web.nosuchsegment.",
//     the root). If the segment may reach outside (Records.Egress), the
//     query is forwarded to the upstream resolvers (Options.Upstreams, or
//     the nameserver lines of the host's /etc/resolv.conf) and their answer
//     is passed back; if none answers in time the reply is SERVFAIL. If the
//     segment may not reach outside, the reply is REFUSED.
//
// # Where sockets live
//
// Listeners are bound to the gateway address, never to 0.0.0.0, so that an
// answer leaves from the address the query was sent to and each listener
// knows which segment asks. The sockets are created inside the Host
// namespace (netseg.Host), where the bridges and their gateway addresses
// are; a socket stays in the namespace it was created in, so the server
// goroutines may run on any thread. Queries to upstream resolvers leave
// from the Host namespace too.
package dns
