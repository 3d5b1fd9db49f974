package osrelease

import (
	"strings"
	"testing"
)

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"16.04", "16.10", -1},
		{"16.10", "16.10", 0},
		{"18.04", "16.10", 1},
		{"9", "9", 0},
		{"10", "9", 1},
		{"9.13", "9", 1},
		{"4/5", "6", -1},
		{"5/7", "6", 1},
		{"8.x", "8.1", 0},
		{"007", "7", 0},
		{"123456789012345678901234567890", "9", 1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestNumericVersion(t *testing.T) {
	tests := []struct {
		tok   string
		parts int
		want  string
	}{
		{"7.9.2009", 1, "7"},
		{"22.04.3", 2, "22.04"},
		{"4/5", 1, "4/5"},
		{"7.9/8.1", 1, "7/8"},
		{"8.x", 2, "8.x"},
		{"13.2-release", 1, "13"},
		{"lts", 1, ""},
		{"4/x", 1, "4"},
		{"", 1, ""},
	}
	for _, tt := range tests {
		if got := numericVersion(tt.tok, tt.parts); got != tt.want {
			t.Errorf("numericVersion(%q, %d) = %q, want %q", tt.tok, tt.parts, got, tt.want)
		}
	}
}

func TestEmbeddedTable(t *testing.T) {
	rows, err := loadTable(eolYAML)
	if err != nil {
		t.Fatal(err)
	}
	// The releases the assessment's legacy rule names must all be in the table.
	for _, name := range []string{"CentOS 5-8", "RHEL 5-6", "Ubuntu <= 16.04", "Debian <= 9",
		"Windows Server <= 2012 R2", "SLES 11", "Windows XP/Vista/7/8/8.1", "Oracle Linux 5-6", "Fedora <= 38"} {
		found := false
		for _, r := range rows {
			found = found || r.Name == name
		}
		if !found {
			t.Errorf("eol.yaml has no entry %q", name)
		}
	}
}

func TestLoadTableErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown field", "entries:\n- name: a\n  note: b\n  match: {family: linux, distribution: centos, min: 3}\n", "field min not found"},
		{"unknown distribution", "entries:\n- name: a\n  note: b\n  match: {family: linux, distribution: gentoo}\n", `unknown distribution "gentoo"`},
		{"wrong family", "entries:\n- name: a\n  note: b\n  match: {family: windows, distribution: centos}\n", "is of family linux"},
		{"both", "entries:\n- name: a\n  note: b\n  match: {family: linux, distribution: centos, maxVersion: '7', versions: ['6']}\n", "not both"},
		{"bad max", "entries:\n- name: a\n  note: b\n  match: {family: linux, distribution: centos, maxVersion: seven}\n", "not a version"},
		{"unreadable version", "entries:\n- name: a\n  note: b\n  match: {family: windows, distribution: windows, versions: ['2012 R2']}\n", "reads as"},
		{"no note", "entries:\n- name: a\n  match: {family: linux, distribution: centos}\n", "note is empty"},
		{"no name", "entries:\n- note: a\n  match: {family: linux, distribution: centos}\n", "name is empty"},
		{"twice", "entries:\n- {name: a, note: b, match: {family: linux, distribution: centos}}\n- {name: a, note: b, match: {family: linux, distribution: rhel}}\n", "used twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadTable([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("loadTable() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestDistroNames checks that every distribution's name reads back as that distribution, so
// that normalized versions parse to themselves.
func TestDistroNames(t *testing.T) {
	ids := map[string]bool{}
	for _, d := range distros {
		if ids[d.id] {
			t.Errorf("distribution id %q is used twice", d.id)
		}
		ids[d.id] = true
		got, end := findDistro(tokens(d.name))
		if got != d || end != len(tokens(d.name)) {
			t.Errorf("name %q reads as %v", d.name, got)
		}
	}
}
