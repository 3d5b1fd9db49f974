package assess

import (
	"testing"

	"github.com/google/cel-go/common/types"
)

func TestPathOverlaps(t *testing.T) {
	places := types.DefaultTypeAdapter.NativeToValue([]string{"/proc", "/var/run/docker.sock", "/etc/kubernetes/"})
	tests := []struct {
		path string
		want bool
	}{
		{"/proc", true},
		{"/proc/sys/kernel", true},
		{"/procfoo", false},
		{"/pro", false},
		{"/var/run/docker.sock", true},
		{"/var/run/docker.sock.bak", false},
		{"/var/run", true}, // holds the socket
		{"/var", true},
		{"/", true},
		{"//proc//", true},
		{"/srv/../proc/1/root", true},
		{"/etc/kubernetes/pki/ca.key", true},
		{"/etc/kubernetesx", false},
		{"/srv/www", false},
		{"proc", false}, // relative: not the host's /proc
		{"../proc", false},
	}
	for _, tt := range tests {
		got := pathOverlaps(types.String(tt.path), places)
		if got != types.Bool(tt.want) {
			t.Errorf("pathOverlaps(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
	if got := pathOverlaps(types.String("/srv"), types.DefaultTypeAdapter.NativeToValue([]string{"/"})); got != types.True {
		t.Errorf("pathOverlaps(/srv, [/]) = %v, want true: / holds every absolute path", got)
	}
	if got := pathOverlaps(types.String("/srv"), types.DefaultTypeAdapter.NativeToValue([]any{1})); !types.IsError(got) {
		t.Errorf("pathOverlaps on a list of numbers = %v, want an error", got)
	}
}
