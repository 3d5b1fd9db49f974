package compose

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"strata.dev/strata/internal/inventory"
)

// note records what of the service at node n (path p) did not carry over. A node of another
// file than the service's own is named in the message, as a note's line is in the service's
// file.
func (b *builder) note(n *yaml.Node, p *field.Path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	line := 0
	if n != nil && n.Line > 0 {
		if src := b.r.sourceOf(n); src != b.r.sourceOf(b.key) {
			msg += fmt.Sprintf(" (%s:%d)", src.file, n.Line)
		} else {
			line = n.Line
		}
	}
	nt := inventory.Note{Line: line, Message: msg}
	if p != nil {
		nt.Path = p.String()
	}
	b.notes = append(b.notes, nt)
}

// unexpressed says, for the service keys strata has no field for, what is lost and what to do.
var unexpressed = map[string]string{
	"cap_drop":            "dropped capabilities (cap_drop) are not carried over: strata runs with its own default capability set",
	"configs":             "configs are not carried over: put the files in the image or in a volume",
	"secrets":             "secrets are not carried over: pass them through env or a volume",
	"depends_on":          "the start order (depends_on) is not carried over: strata starts workloads independently, so let the service retry what it depends on",
	"links":               "links are not carried over: workloads of a segment reach each other by name",
	"external_links":      "external_links are not carried over: workloads of a segment reach each other by name",
	"volumes_from":        "volumes_from is not carried over: mount the same named volumes in both services",
	"extra_hosts":         "extra_hosts are not carried over: give the names DNS records, or add them to the image's /etc/hosts",
	"dns":                 "dns servers are not carried over: workloads use strata's resolver",
	"dns_search":          "dns_search is not carried over: workloads use strata's resolver",
	"hostname":            "hostname is not carried over: an instance is named after its workload",
	"domainname":          "domainname is not carried over",
	"user":                "user is not carried over: set USER in the image",
	"working_dir":         "working_dir is not carried over: set WORKDIR in the image",
	"ulimits":             "ulimits are not carried over: the runtime's defaults apply",
	"shm_size":            "shm_size is not carried over: /dev/shm has the runtime's default size",
	"tmpfs":               "tmpfs mounts are not carried over: the files live in the instance's own filesystem",
	"read_only":           "read_only is not carried over: the root filesystem is writable",
	"init":                "init is not carried over: add an init (such as tini) to the image if the service needs one",
	"stop_signal":         "stop_signal is not carried over: set STOPSIGNAL in the image",
	"stop_grace_period":   "stop_grace_period is not carried over: strata's default grace period applies",
	"group_add":           "group_add is not carried over: add the groups to the image's user",
	"device_cgroup_rules": "device_cgroup_rules are not carried over: name the devices under devices",
	"storage_opt":         "storage_opt is not carried over",
	"logging":             "logging is not carried over: strata keeps each instance's output (strata logs)",
	"profiles":            "profiles are not carried over: the service is imported whatever profile is active",
	"oom_score_adj":       "oom_score_adj is not carried over",
	"mem_swappiness":      "mem_swappiness is not carried over",
	"memswap_limit":       "memswap_limit is not carried over: strata limits memory only",
	"pids_limit":          "pids_limit is not carried over",
	"cpuset":              "cpuset is not carried over: strata limits CPU time, not which CPUs",
	"gpus":                "gpus are not carried over: strata does not hand GPUs to workloads",
	"post_start":          "post_start hooks are not carried over: run them from the image's entrypoint",
	"pre_stop":            "pre_stop hooks are not carried over",
}

// unexpressedKeys notes the keys of unexpressed the service sets, in the order of the file.
func (b *builder) unexpressedKeys() {
	for _, e := range b.f {
		if msg, ok := unexpressed[e.key]; ok && !isNull(b.r.resolve(e.v)) {
			b.note(e.k, b.p.Child(e.key), "%s", msg)
		}
	}
}

// networks notes the networks a service joins besides the project's default one.
func (b *builder) networks() {
	n, p := b.get("networks")
	rn := b.r.resolve(n)
	if isNull(rn) {
		return
	}
	var names []string
	switch rn.Kind {
	case yaml.SequenceNode:
		for i, item := range rn.Content {
			if s, ok := b.r.str(item, p.Index(i)); ok && s != "default" {
				names = append(names, s)
			}
		}
	case yaml.MappingNode:
		fs, _ := b.r.mapping(rn, p)
		for _, e := range fs {
			if e.key != "default" {
				names = append(names, e.key)
			}
		}
	}
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	b.note(b.r.resolve(n), p, "networks (%s) are not carried over: every workload of the project joins one segment; split it into segments by hand if they must not reach each other",
		strings.Join(names, ", "))
}
