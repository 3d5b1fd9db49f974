package script

import (
	"errors"
	"reflect"
	"slices"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		argv []string
		want Script
	}{
		{Sleep(30), Script{Op: OpSleep, Seconds: 30}},
		{Serve(600), Script{Op: OpServe, Seconds: 600}},
		{IgnoreTerm(5), Script{Op: OpIgnoreTerm, Seconds: 5}},
		{Exit(3), Script{Op: OpExit, Code: 3}},
		{Echo("hello", "world"), Script{Op: OpEcho, Words: []string{"hello", "world"}}},
		{Echo(), Script{Op: OpEcho, Words: []string{}}},
		{PrintEnv("A", "B_2"), Script{Op: OpPrintEnv, Names: []string{"A", "B_2"}}},
		{Output("out put", "err", 7), Script{Op: OpOutput, Stdout: "out put", Stderr: "err", Code: 7}},
		{Cat(), Script{Op: OpCat}},
		{ReadFile("/in/a.txt"), Script{Op: OpReadFile, Path: "/in/a.txt"}},
		{WriteFile("/out/b.txt", "x=1"), Script{Op: OpWriteFile, Path: "/out/b.txt", Text: "x=1"}},
		{Allocate(512), Script{Op: OpAllocate, MiB: 512}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.argv)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.argv, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.argv, got, tt.want)
		}
	}
}

func TestArgv(t *testing.T) {
	tests := []struct {
		got, want []string
	}{
		{Sleep(2), []string{"sleep", "2"}},
		{Serve(9), []string{"sh", "-c", `trap "exit 143" TERM; echo serving; sleep 9 & wait`}},
		{IgnoreTerm(9), []string{"sh", "-c", `trap "" TERM; echo ignoring; sleep 9 & wait`}},
		{Exit(4), []string{"sh", "-c", "exit 4"}},
		{PrintEnv("A", "B"), []string{"sh", "-c", `echo "A=$A"; echo "B=$B"`}},
		{Output("o", "e", 1), []string{"sh", "-c", `echo "o"; echo "e" >&2; exit 1`}},
		{WriteFile("/f", "t"), []string{"sh", "-c", `echo "t" > /f`}},
		{Allocate(64), []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"}},
	}
	for _, tt := range tests {
		if !slices.Equal(tt.got, tt.want) {
			t.Errorf("argv %q, want %q", tt.got, tt.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	tests := [][]string{
		nil,
		{},
		{"/bin/payments"},
		{"sleep"},
		{"sleep", "x"},
		{"sleep", "1", "2"},
		{"sleep", "-1"},
		{"sleep", "+1"},
		{"sleep", "01"},
		{"sh", "-c", "exit 256"},
		{"sh", "-c", "exit -1"},
		{"sh", "-c", "exit 1; rm -rf /"},
		{"sh", "-c", `echo "A=$B"`},
		{"sh", "-c", `echo "1A=$1A"`},
		{"sh", "-c", `echo "$(id)"; echo "e" >&2; exit 1`},
		{"sh", "-c", `echo "t" > /f; reboot`},
		{"sh", "-c", `echo "t" > relative`},
		{"sh", "-c", `trap "exit 143" TERM; echo serving; sleep 9 & wait; reboot`},
		{"echo", "-n", "x"},
		{"echo", ""},
		{"cat", "relative"},
		{"cat", "/a b"},
		{"cat", "/a", "/b"},
		{"dd", "if=/dev/zero", "of=/dev/null", "bs=0M", "count=1"},
		{"dd", "if=/dev/zero", "of=/etc/passwd", "bs=1M", "count=1"},
		{"dd", "if=/dev/zero", "of=/dev/null", "bs=1G", "count=1"},
	}
	for _, argv := range tests {
		if s, err := Parse(argv); !errors.Is(err, ErrUnknown) {
			t.Errorf("Parse(%q) = %+v, %v; want ErrUnknown", argv, s, err)
		}
	}
}

// FuzzParse checks that Parse accepts exactly the command lines Argv
// builds: whatever it accepts, building the script again gives the same
// argument vector, and the script's parameters stay in the vocabulary's
// alphabet.
func FuzzParse(f *testing.F) {
	for _, argv := range [][]string{
		Sleep(1), Serve(2), IgnoreTerm(3), Exit(4), Echo("a", "b"), PrintEnv("A"),
		Output("o", "e", 5), Cat(), ReadFile("/a"), WriteFile("/b", "t"), Allocate(6),
		{"sh", "-c", `echo "A=$A"; echo "B"`},
	} {
		f.Add(join(argv))
	}
	f.Fuzz(func(t *testing.T, packed string) {
		argv := split(packed)
		s, err := Parse(argv)
		if err != nil {
			if !errors.Is(err, ErrUnknown) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrUnknown", argv, err)
			}
			return
		}
		if got := s.Argv(); !slices.Equal(got, argv) {
			t.Fatalf("Parse(%q) = %+v, whose Argv is %q", argv, s, got)
		}
		if !s.valid() {
			t.Fatalf("Parse(%q) accepted an invalid script %+v", argv, s)
		}
		again, err := Parse(s.Argv())
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("Parse(Argv(%+v)) = %+v, %v", s, again, err)
		}
	})
}

// join and split pack an argument vector into one fuzzable string, NUL
// separated (NUL cannot occur in an argument).
func join(argv []string) string {
	out := ""
	for i, a := range argv {
		if i > 0 {
			out += "\x00"
		}
		out += a
	}
	return out
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
