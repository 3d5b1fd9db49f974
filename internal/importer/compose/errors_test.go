package compose

import (
	"strings"
	"testing"
)

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every error, as printed
		// items is how many workloads are still imported.
		items int
	}{
		{"ports as a scalar", `
services:
  web:
    image: nginx
    ports: 80
`, []string{`compose.yaml:5:12: services.web.ports: expected a list, got 80 (write a YAML list, one item per line starting with '- ')`}, 1},
		{"replicas not a number", `
services:
  web:
    image: nginx
    deploy:
      replicas: many
`, []string{`compose.yaml:6:17: services.web.deploy.replicas: expected an integer, got "many"`}, 1},
		{"bad memory", `
services:
  web:
    image: nginx
    deploy:
      resources:
        limits:
          memory: 12Q
`, []string{`compose.yaml:8:19: services.web.deploy.resources.limits.memory: invalid memory size "12Q": unknown unit "Q" (` + memoryHint + `)`}, 1},
		{"bad trust", `
services:
  web:
    image: nginx
    labels:
      strata.dev/trust: maybe
`, []string{`compose.yaml:6:7: services.web.labels[strata.dev/trust]: unsupported value "maybe" for strata.dev/trust (use one of trusted, internal, untrusted)`}, 1},
		{"bad data in a label list", `
services:
  web:
    image: nginx
    deploy:
      labels: ["strata.dev/data=secret"]
`, []string{`compose.yaml:6:16: services.web.deploy.labels[strata.dev/data]: unsupported value "secret" for strata.dev/data (use one of public, internal, confidential, regulated)`}, 1},
		{"strata labels", `
services:
  web:
    image: nginx
    labels:
      strata.dev/trusted: "yes"
      strata.dev/tenant: "two words"
      strata.dev/tenancy: many
      strata.dev/isolation: jail
`, []string{
			`compose.yaml:6:7: services.web.labels[strata.dev/trusted]: unknown strata label "strata.dev/trusted" (strata reads strata.dev/trust, strata.dev/data, strata.dev/tenancy, strata.dev/tenant, strata.dev/isolation)`,
			`compose.yaml:7:7: services.web.labels[strata.dev/tenant]: invalid tenant "two words" (name the tenant with at most 63 letters, digits, '-', '_' and '.', such as shop)`,
			`compose.yaml:8:7: services.web.labels[strata.dev/tenancy]: unsupported value "many" for strata.dev/tenancy (use one of single, multi)`,
			`compose.yaml:9:7: services.web.labels[strata.dev/isolation]: unsupported value "jail" for strata.dev/isolation (use one of auto, container, sandbox, vm)`,
		}, 1},
		{"labels disagree", `
services:
  web:
    image: nginx
    labels: {strata.dev/data: public}
    deploy: {labels: {strata.dev/data: regulated}}
`, []string{`compose.yaml:6:23: services.web.deploy.labels[strata.dev/data]: strata.dev/data is "regulated" here and "public" in another list (give the label one value)`}, 1},
		{"wrong shapes", `
services:
  web:
    image: [nginx]
    privileged: maybe
    cap_add: NET_ADMIN
    environment: FOO=bar
    command: ["ok", {no: list}]
    sysctls: 5
`, []string{
			`compose.yaml:4:12: services.web.image: expected a string, got a list`,
			`compose.yaml:5:17: services.web.privileged: expected true or false, got "maybe" (write true or false)`,
			`compose.yaml:6:14: services.web.cap_add: expected a list, got "NET_ADMIN" (write a YAML list, one item per line starting with '- ')`,
			`compose.yaml:7:18: services.web.environment: expected a mapping or a list, got "FOO=bar" (write a mapping of key: value, or a list of key=value)`,
			`compose.yaml:8:21: services.web.command[1]: expected a string, got a mapping`,
			`compose.yaml:9:14: services.web.sysctls: expected a mapping or a list, got 5 (write a mapping of key: value, or a list of key=value)`,
		}, 1},
		{"bad values", `
services:
  web:
    image: nginx
    cap_add: [net-admin]
    command: echo 'unterminated
    restart: sometimes
    cpus: lots
    scale: 3
    deploy: {replicas: 2}
    environment: ["=x"]
`, []string{
			`compose.yaml:5:15: services.web.cap_add[0]: invalid capability "net-admin" (write a Linux capability name such as NET_ADMIN)`,
			`compose.yaml:6:14: services.web.command: unterminated single quote in command (close the quote, or give the words as a list)`,
			`compose.yaml:7:14: services.web.restart: unsupported restart policy "sometimes" (use one of no, always, on-failure[:N], unless-stopped)`,
			`compose.yaml:8:11: services.web.cpus: invalid CPU count "lots" (` + cpuHint + `)`,
			`compose.yaml:9:12: services.web.scale: scale (3) and deploy.replicas (2) disagree (keep deploy.replicas and remove scale)`,
			`compose.yaml:11:19: services.web.environment[0]: the item "=x" has no key (write items such as KEY=value)`,
		}, 1},
		{"ports", `
services:
  web:
    image: nginx
    ports:
      - "8080:http"
      - "1-200"
      - "8080:80"
      - "8081:80"
      - {published: 80}
      - [80]
    expose: ["80:80"]
`, []string{
			`compose.yaml:6:9: services.web.ports[0]: invalid port "8080:http": "http" is not a port number between 1 and 65535 (` + portHint + `)`,
			`compose.yaml:7:9: services.web.ports[1]: invalid port "1-200": the range holds 200 ports, more than 100 (` + portHint + `)`,
			`compose.yaml:9:9: services.web.ports[3]: container port 80/tcp is published on host ports 8080 and 8081 (strata publishes a container port on one host port: keep one of the mappings)`,
			`compose.yaml:10:9: services.web.ports[4].target: a port needs a target (give the container port as target)`,
			`compose.yaml:11:9: services.web.ports[5]: expected a string or a mapping, got a list (` + portHint + `, or a mapping with target and published)`,
			`compose.yaml:12:14: services.web.expose[0]: invalid exposed port "80:80": expose takes container ports only (` + exposeHint + `)`,
		}, 1},
		{"volumes and health", `
services:
  db:
    image: postgres
    volumes:
      - data:relative
      - data:/a
      - data:/b
      - {type: magic, source: x, target: /x}
      - {type: bind, target: /x}
    healthcheck:
      test: ["curl", "http://localhost/"]
      interval: soon
`, []string{
			`compose.yaml:6:9: services.db.volumes[0]: the volume "data" has no absolute target path (got "relative") (mount the volume at an absolute path such as /data)`,
			`compose.yaml:8:9: services.db.volumes[2]: the volume "data" is mounted twice (strata mounts a volume at one path: keep one of the mounts)`,
			`compose.yaml:9:16: services.db.volumes[3].type: unsupported volume type "magic" (use one of bind, volume, tmpfs, npipe, image, cluster)`,
			`compose.yaml:10:9: services.db.volumes[4].source: a bind mount needs a source (name the host path to mount)`,
			`compose.yaml:12:13: services.db.healthcheck.test: a test list starts with CMD, CMD-SHELL or NONE and then the command (` + testHint + `)`,
		}, 1},
		{"sandbox without an image", `
services:
  tool:
    build: .
    runtime: runsc
`, []string{`compose.yaml:5:14: services.tool.runtime: the sandbox tier runs an image, and the service has none (give the service an image, or ask for the vm tier)`}, 1},
		{"service not a mapping", `
name: [shop]
services:
  web: nginx
  ok:
    image: nginx
`, []string{
			`compose.yaml:2:7: name: expected a string, got a list`,
			`compose.yaml:4:8: services.web: expected a mapping, got "nginx" (write key: value pairs)`,
		}, 2},
		{"bad merge", `
services:
  web:
    <<: nginx
    image: nginx
`, []string{`compose.yaml:4:9: services.web: a merge key (<<) takes a mapping or a list of mappings, got "nginx" (merge an alias of a mapping (<<: *base) or a list of them)`}, 1},
		{"not compose", `
apiVersion: v1
kind: Pod
services: {}
`, []string{`compose.yaml:2:1: the document is not a compose file (a compose file is a mapping with a services: mapping (or an include: list) and no apiVersion or kind)`}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, errs := importYAML(t, tt.yaml)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if len(set.Items) != tt.items {
				t.Errorf("got %d items, want %d", len(set.Items), tt.items)
			}
		})
	}
}
