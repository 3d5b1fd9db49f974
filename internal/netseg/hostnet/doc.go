// Package hostnet is the host side of segments for the controllers: it implements
// control.Network (instances' attachments) and control.SegmentNetwork (bridges, policy
// and names) over the network manager (package netseg), strata's nftables table (package
// policy) and the name server on each gateway (package dns), in the terms of package
// netstate.
//
// Containers and sandboxes get a network namespace and their segment's resolv.conf
// (DataDir/network/resolv/<segment>.conf, naming the gateway), VMs a tap and the gateway
// as resolver. Enforce turns the controllers' State into a policy and name records
// (Compile, a pure function), gives the name server the records and replaces strata's
// table when the ruleset changed.
package hostnet
