package osrelease

import (
	"bytes"
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"strata.dev/strata/api/v1alpha1"
)

//go:embed eol.yaml
var eolYAML []byte

// Entry is a row of the end-of-life table.
type Entry struct {
	// Name names the releases, such as "CentOS 5-8" or "Windows Server <= 2012 R2".
	Name string
	// Note says why they are end of life.
	Note string
}

// EndOfLife reports whether osVersion, a normalized Version or raw text such as
// "Red Hat Enterprise Linux 6 (64-bit)", is an end-of-life release, and names the table
// entry that says so.
func EndOfLife(osVersion string) (entry string, eol bool) {
	e, ok := Lookup(osVersion)
	return e.Name, ok
}

// Lookup returns the end-of-life table entry that matches osVersion, if any.
func Lookup(osVersion string) (Entry, bool) {
	p := parse(osVersion)
	if p.distro == nil {
		return Entry{}, false
	}
	for _, r := range table() {
		if r.matches(p) {
			return Entry{Name: r.Name, Note: r.Note}, true
		}
	}
	return Entry{}, false
}

// Entries returns the whole end-of-life table, in order.
func Entries() []Entry {
	rows := table()
	out := make([]Entry, len(rows))
	for i, r := range rows {
		out[i] = Entry{Name: r.Name, Note: r.Note}
	}
	return out
}

// eolFile is the layout of eol.yaml.
type eolFile struct {
	Entries []eolRow `yaml:"entries"`
}

type eolRow struct {
	Name  string `yaml:"name"`
	Match struct {
		Family       v1alpha1.OSFamily `yaml:"family"`
		Distribution string            `yaml:"distribution"`
		MaxVersion   string            `yaml:"maxVersion"`
		Versions     []string          `yaml:"versions"`
	} `yaml:"match"`
	Note string `yaml:"note"`
}

func (r *eolRow) matches(p parsed) bool {
	m := &r.Match
	if p.family != m.Family || p.distro.id != m.Distribution {
		return false
	}
	switch {
	case m.MaxVersion != "":
		return p.version != "" && compareVersions(p.version, m.MaxVersion) <= 0
	case len(m.Versions) > 0:
		return slices.ContainsFunc(m.Versions, func(v string) bool { return strings.EqualFold(v, p.version) })
	}
	return true
}

// table is eol.yaml, read once. The file is part of the program: a mistake in it is a bug,
// caught by the package's tests, so it panics.
var table = sync.OnceValue(func() []eolRow {
	rows, err := loadTable(eolYAML)
	if err != nil {
		panic(fmt.Sprintf("osrelease: embedded eol.yaml: %v", err))
	}
	return rows
})

// loadTable decodes and checks an end-of-life table.
func loadTable(data []byte) ([]eolRow, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f eolFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	names := map[string]bool{}
	for i := range f.Entries {
		r := &f.Entries[i]
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("entry %d (%q): %w", i+1, r.Name, err)
		}
		if names[r.Name] {
			return nil, fmt.Errorf("entry %d: name %q is used twice", i+1, r.Name)
		}
		names[r.Name] = true
	}
	return f.Entries, nil
}

func (r *eolRow) check() error {
	m := &r.Match
	switch {
	case strings.TrimSpace(r.Name) == "":
		return fmt.Errorf("name is empty")
	case strings.TrimSpace(r.Note) == "":
		return fmt.Errorf("note is empty")
	}
	d := distroByID(m.Distribution)
	if d == nil {
		return fmt.Errorf("unknown distribution %q", m.Distribution)
	}
	if d.family != m.Family {
		return fmt.Errorf("distribution %s is of family %s, not %q", d.id, d.family, m.Family)
	}
	if m.MaxVersion != "" && len(m.Versions) > 0 {
		return fmt.Errorf("give maxVersion or versions, not both")
	}
	if m.MaxVersion != "" && numericVersion(m.MaxVersion, len(m.MaxVersion)) != m.MaxVersion {
		return fmt.Errorf("maxVersion %q is not a version such as 16.04", m.MaxVersion)
	}
	for _, v := range m.Versions {
		// A listed version must be one Parse can produce, or it would never match.
		name := d.name + " " + v
		if got := Parse(name).Version; !strings.EqualFold(got, name) {
			return fmt.Errorf("version %q reads as %q", v, got)
		}
	}
	return nil
}
