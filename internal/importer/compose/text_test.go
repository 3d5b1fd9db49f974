package compose

import (
	"reflect"
	"strings"
	"testing"
)

func TestInterpolate(t *testing.T) {
	vars := map[string]string{"HOST": "db.internal", "EMPTY": "", "PORT": "5432", "NAME_2": "two"}
	lookup := func(name string) (string, bool) { v, ok := vars[name]; return v, ok }
	tests := []struct {
		in, want string
		unset    []string
		err      string // part of the error message; empty for none
	}{
		{in: "plain", want: "plain"},
		{in: "$HOST:$PORT", want: "db.internal:5432"},
		{in: "${HOST}", want: "db.internal"},
		{in: "x${NAME_2}y", want: "xtwoy"},
		{in: "$HOST.example", want: "db.internal.example"},
		{in: "${MISSING}", want: "", unset: []string{"MISSING"}},
		{in: "$MISSING/$MISSING", want: "/", unset: []string{"MISSING"}},
		{in: "${MISSING:-default}", want: "default"},
		{in: "${EMPTY:-default}", want: "default"},
		{in: "${MISSING-default}", want: "default"},
		{in: "${EMPTY-default}", want: ""},
		{in: "${HOST:-default}", want: "db.internal"},
		{in: "${MISSING:-}", want: ""},
		{in: "a-${MISSING:-b}-c", want: "a-b-c"},
		{in: "${A:-${B:-deep}}", want: "deep"},
		{in: "${A:-${HOST}}", want: "db.internal"},
		{in: "${A:-${B}}", want: "", unset: []string{"B"}},
		{in: "${HOST:-${B}}", want: "db.internal"},
		{in: "${HOST:+alt}", want: "alt"},
		{in: "${EMPTY:+alt}", want: ""},
		{in: "${EMPTY+alt}", want: "alt"},
		{in: "${MISSING+alt}", want: ""},
		{in: "${HOST+$PORT}", want: "5432"},
		{in: "${HOST:?must be set}", want: "db.internal"},
		{in: "${EMPTY?must be set}", want: ""},
		{in: "${MISSING:?set the database host}", err: "required variable MISSING is not set: set the database host"},
		{in: "${EMPTY:?no empty host}", err: "required variable EMPTY is empty: no empty host"},
		{in: "${MISSING?}", err: "required variable MISSING is not set"},
		{in: "${MISSING?in ${HOST}}", err: "required variable MISSING is not set: in db.internal"},
		{in: "$$", want: "$"},
		{in: "$$HOST", want: "$HOST"},
		{in: "$${HOST:-x}", want: "${HOST:-x}"},
		{in: "${MISSING:-$$}", want: "$"},
		{in: "cost: 5$", want: "cost: 5$"},
		{in: "$1 and $ and $-", want: "$1 and $ and $-"},
		{in: "${unclosed", err: "does not close it"},
		{in: "${}", err: `invalid variable reference "${}"`},
		{in: "${-x}", err: "invalid variable reference"},
		{in: "${VAR/a/b}", err: "invalid variable reference"},
		{in: "${VAR:}", err: "invalid variable reference"},
		{in: "${VAR:=x}", err: "invalid variable reference"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := interpolate(tt.in, lookup)
			if tt.err != "" {
				if got.err == nil || !strings.Contains(got.err.msg, tt.err) {
					t.Fatalf("interpolate(%q) = %+v, want an error with %q", tt.in, got, tt.err)
				}
				return
			}
			if got.err != nil {
				t.Fatalf("interpolate(%q): error %q", tt.in, got.err.msg)
			}
			if got.value != tt.want || !reflect.DeepEqual(got.unset, tt.unset) {
				t.Errorf("interpolate(%q) = %q unset %q, want %q unset %q", tt.in, got.value, got.unset, tt.want, tt.unset)
			}
		})
	}
	// References may nest maxNesting deep, not deeper.
	nest := func(n int) string { return strings.Repeat("${A:-", n) + "x" + strings.Repeat("}", n) }
	if got := interpolate(nest(maxNesting), lookup); got.err != nil || got.value != "x" {
		t.Errorf("interpolate(%d deep) = %+v", maxNesting, got)
	}
	if got := interpolate(nest(maxNesting+2), lookup); got.err == nil {
		t.Errorf("interpolate(%d deep) = %+v, want an error", maxNesting+2, got)
	}
}

func TestSplitShell(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"  a  b\tc\n", []string{"a", "b", "c"}, true},
		{`echo 'single "quoted"'`, []string{"echo", `single "quoted"`}, true},
		{`echo "double 'quoted' \"x\" \$y \n"`, []string{"echo", `double 'quoted' "x" $y \n`}, true},
		{`a\ b c`, []string{"a b", "c"}, true},
		{`x""y ''`, []string{"xy", ""}, true},
		{"a \\\nb", []string{"a", "b"}, true},
		{`trailing\`, []string{`trailing\`}, true},
		{`'open`, nil, false},
		{`"open`, nil, false},
		{`"ends in backslash\"`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := splitShell(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("splitShell(%q) error %v, want ok %v", tt.in, err, tt.ok)
			}
			if tt.ok && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("splitShell(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestDNSLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"web", "web"},
		{"Web_Frontend", "web-frontend"},
		{"api.v2", "api-v2"},
		{"--x--", "x"},
		{"a__b", "a-b"},
		{"___", "service"},
		{"ünïcode", "n-code"},
		{strings.Repeat("a", 70), strings.Repeat("a", 63)},
		{strings.Repeat("a", 62) + "_b", strings.Repeat("a", 62)},
	}
	for _, tt := range tests {
		if got := dnsLabel(tt.in, "service"); got != tt.want {
			t.Errorf("dnsLabel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestServiceNames(t *testing.T) {
	long := strings.Repeat("x", 63)
	tests := []struct {
		in, want []string
	}{
		{[]string{"web", "db"}, []string{"web", "db"}},
		{[]string{"Web", "web"}, []string{"web-2", "web"}},
		{[]string{"a_b", "a-b", "A.B"}, []string{"a-b-2", "a-b", "a-b-3"}},
		{[]string{"web_2", "web-2", "Web"}, []string{"web-2-2", "web-2", "web"}},
		{[]string{long, long + "_"}, []string{long, strings.Repeat("x", 61) + "-2"}},
		{[]string{"!", "?"}, []string{"service", "service-2"}},
	}
	for _, tt := range tests {
		fs := make(fields, len(tt.in))
		for i, n := range tt.in {
			fs[i] = entry{key: n}
		}
		got := serviceNames(fs)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("serviceNames(%q) = %q, want %q", tt.in, got, tt.want)
		}
		for _, n := range got {
			if !isDNSLabel(n) {
				t.Errorf("%q is no DNS label", n)
			}
		}
	}
}
