// Package compose imports compose projects (the compose specification's services, with the
// files they extend and include and the project's variables) as strata Workloads, one per
// service, with traits inferred from what each service asks of its host. Every item keeps the
// file and the line of its service's key.
//
// A project is its main file, named by the caller (relative paths in a file start from that
// file's directory; the main file's directory is the project directory), and:
//
//   - extends: a service NAME, or {service, file} with file relative to the extending file,
//     resolved first, chains included, with the specification's merge rules (see
//     mergeNodes): mappings merged key by key with the extending service winning, environment,
//     labels and sysctls merged by variable in either syntax, volumes and devices by target
//     path, cap_add, ports, security_opt and the like appended without duplicates, command,
//     entrypoint and healthcheck.test replaced, scalars replaced; !reset and !override as in
//     the specification. A cycle is an error naming the chain; so are a missing file or service.
//   - include: a path, or {path (one or a list merged in order), project_directory, env_file},
//     relative to the including file. The included services join the project; an included file
//     has its own project directory and variables (its env_file, else the .env of its project
//     directory), which the including project's variables override. A missing file is an error
//     at the include; so are include cycles and a service defined twice.
//
// What is read, and how it maps:
//
//   - The service name becomes metadata.name, sanitized into a DNS label (lower case, runs of
//     other characters become '-', at most 63 characters) and made unique with -2, -3, ...;
//     the original is kept in the item's Source.Name when it changed. The top-level name:
//     (the project) goes to the annotation strata.dev/compose-project.
//   - image, command and entrypoint (a string is split like a shell would; with an entrypoint,
//     the command is the entrypoint followed by the command), env_file (paths, or {path,
//     required, format: raw}; later files win) and environment (a mapping or a list of K=V;
//     a bare K is empty), which wins over env_file. A service built from source (build: without image:)
//     has no image strata can know: spec.image stays empty, the build context is noted in the
//     annotation strata.dev/build-context (for every service with build:).
//   - privileged, cap_add (CAP_ prefix removed, upper case), devices, and network_mode, pid,
//     ipc, userns_mode, uts and cgroup set to host (hostAccess network, pid, ipc, user, uts,
//     cgroup) become traits.
//   - Bind mounts (short syntax with a source starting with '/', '.' or '~', or any source
//     that cannot be a volume name; long syntax type bind; named volumes whose top-level
//     definition binds a host directory with driver_opts o: bind and device) become
//     traits.hostPaths, graded by the policy: the path cleaned, relative to the directory of
//     the file that names it; inside the project's directory (the main compose file's) it is
//     written relative to it ("./nginx.conf") with inProject, elsewhere absolute (~ is the
//     environment's HOME, never in the project); readOnly from the mode ro or read_only. A
//     source strata cannot place on a Linux host (a Windows path or named pipe, ~ without
//     HOME) counts as hostAccess paths. Named volumes become spec.volumes; anonymous and tmpfs
//     volumes are not imported.
//   - security_opt seccomp:unconfined, apparmor:unconfined, no-new-privileges:false and
//     systempaths=unconfined (':' or '=') become traits.unconfined seccomp, apparmor,
//     privilegeEscalation and procMount.
//   - sysctls become traits.kernel.sysctls when v1alpha1.SysctlNeedsOwnKernel says so; the
//     namespaced ones a container may set under a shared kernel are noted instead.
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
// What a service asks for and strata cannot express is never dropped silently: each item
// carries notes (inventory.Item.Notes, with the line and key path) for a build: without an
// image, bind mounts (strata mounts volumes, not host paths: the file must travel in the
// image or a volume), anonymous volumes and tmpfs mounts, configs and secrets, namespaced
// sysctls, depends_on, networks besides the default one, namespaces shared with another
// container (service:x, container:x), security options other than the unconfining ones, and
// the service keys with no strata field (user, working_dir, ulimits, cap_drop, extra_hosts,
// logging, ...). A note about a value that comes from another file names that file and line.
// Keys that bear on nothing strata models (x- extensions, container_name, labels other than
// strata's, ...) are ignored.
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
// error; elsewhere it is a warning (inventory.Set.Warnings), and an interval, number or size
// left empty keeps its default. A service with a value that has an interpolation error is
// left out (compose would not run it either) rather than assessed without that value. Values
// no service reads are interpolated too, so that their errors are reported as compose would.
//
// The keys that are read must have the right shape (a list where a list is expected, a
// number where a number is); otherwise the error names the file, line, column and key path,
// and the service is imported without that key.
package compose
