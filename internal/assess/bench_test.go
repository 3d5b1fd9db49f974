package assess

import (
	"testing"

	"strata.dev/strata/api/v1alpha1"
)

// BenchmarkAssess assesses one workload with the default policy: one with no traits to
// speak of, and one with the host paths of a typical web server (a file of the project,
// a read-only host directory, a writable one and the time zone).
func BenchmarkAssess(b *testing.B) {
	for _, bc := range []struct {
		name  string
		paths []v1alpha1.HostPath
	}{
		{"plain", nil},
		{"hostPaths", []v1alpha1.HostPath{
			{Path: "nginx.conf", ReadOnly: true, InProject: true},
			{Path: "/srv/www", ReadOnly: true},
			{Path: "/var/cache/nginx"},
			{Path: "/etc/localtime", ReadOnly: true},
		}},
	} {
		w := workload(func(s *v1alpha1.WorkloadSpec) { s.Traits.HostPaths = bc.paths })
		e := Default()
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Assess(w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
