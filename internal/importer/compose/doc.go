// Package compose imports compose files (the compose specification's top-level services
// mapping) as strata Workloads, one per service, with traits inferred from what each service
// asks of its host. Every item keeps its file and the line of its service's key.
//
// What is read, and how it maps:
//
//   - The service name becomes metadata.name, sanitized into a DNS label (lower case, runs of
//     other characters become '-', at most 63 characters) and made unique with -2, -3, ...;
//     the original is kept in the item's Source.Name when it changed. The top-level name:
//     (the project) goes to the annotation strata.dev/compose-project.
//   - image, command and entrypoint (a string is split like a shell would; with an entrypoint,
//     the command is the entrypoint followed by the command), environment (a mapping or a
//     list of K=V; a bare K is empty). A service built from source (build: without image:)
//     has no image strata can know: spec.image stays empty, the build context is noted in the
//     annotation strata.dev/build-context (for every service with build:).
//   - privileged, cap_add (CAP_ prefix removed, upper case), network_mode/pid/ipc: host,
//     devices, bind mounts (short syntax with a source starting with '/', '.' or '~', or any
//     source that cannot be a volume name; long syntax type bind; named volumes whose
//     top-level definition binds a host directory) become traits. Named volumes become
//     spec.volumes; anonymous and tmpfs volumes are not imported.
//   - sysctls become traits.kernel.sysctls, except the namespaced ones a container may set
//     under a shared kernel: kernel.shm_rmid_forced and net.ipv4.{ip_local_port_range,
//     tcp_syncookies, ping_group_range, ip_unprivileged_port_start, ip_local_reserved_ports,
//     tcp_keepalive_time, tcp_fin_timeout, tcp_keepalive_intvl, tcp_keepalive_probes}.
//   - platform: windows/... sets traits.os windows. runtime: runsc asks for the sandbox tier,
//     a kata runtime for the vm tier.
//   - deploy.replicas (or the legacy scale), deploy.resources limits (reservations when there
//     are no limits; the legacy cpus, mem_limit and mem_reservation too). Memory sizes use the
//     compose units b, k, kb, m, mb, g, gb (1024-based).
//   - ports (short and long syntax; ranges of at most 100 ports are expanded) and expose
//     become spec.ports. strata publishes a container port on one host port: the same port
//     published on two host ports is an error.
//   - labels and deploy.labels: strata.dev/trust, strata.dev/data and strata.dev/tenancy set
//     traits, strata.dev/tenant becomes the tenant label and strata.dev/isolation sets
//     spec.isolation (it wins over runtime:). Other labels are not copied.
//   - healthcheck: a test running curl or wget on a local http URL becomes an http probe,
//     any other test an exec probe (CMD-SHELL and string tests run under /bin/sh -c);
//     interval (rounded up to whole seconds) and retries are kept.
//   - restart (or deploy.restart_policy.condition) becomes spec.restartPolicy.
//
// Everything else is ignored, because compose has many keys that do not bear on isolation:
// among them x- extension keys, extends (a service that extends another is imported with
// only its own keys), env_file, profiles, networks, secrets and configs.
//
// YAML anchors, aliases and merge keys (<<: *base) are resolved wherever a mapping is read.
//
// Interpolation follows the compose specification: $VAR, ${VAR}, ${VAR:-default},
// ${VAR-default}, ${VAR:?message}, ${VAR?message}, ${VAR:+alternative}, ${VAR+alternative},
// nested (${A:-${B:-x}}), and $$ for a literal $. Variables come from the process environment
// (Options.Environ), which wins, then from the .env file beside the compose file, or from
// Options.EnvFiles in order instead. Environment files follow the specification's syntax:
// VAR=value lines, "export " allowed, # comments (inline ones after a blank), single quotes
// literal, double quotes with backslash escapes (\n \r \t \\ \"), and unquoted and double-quoted values
// interpolated with the variables before them. A required variable without a value
// (${VAR:?message}) or a malformed reference is an error at the value. A variable that is not
// set becomes an empty string: in a value that bears on isolation (image, privileged, cap_add,
// network_mode, pid, ipc, userns_mode, uts, cgroup, volumes, devices, security_opt, sysctls,
// runtime, platform, extends, strata.dev/ labels, top-level volumes and include) that is an
// error and the value is left out; elsewhere it is a warning (inventory.Set.Warnings), and an
// interval, number or size left empty keeps its default. Values no service reads are
// interpolated too, so that their errors are reported as compose would report them.
//
// The keys that are read must have the right shape (a list where a list is expected, a
// number where a number is); otherwise the error names the file, line, column and key path,
// and the service is imported without that key.
package compose
