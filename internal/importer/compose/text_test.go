package compose

import (
	"reflect"
	"strings"
	"testing"
)

func TestInterpolate(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"${VAR}", "${VAR}"},
		{"$VAR", "$VAR"},
		{"${VAR:-default}", "default"},
		{"${VAR-default}", "default"},
		{"${VAR:-}", ""},
		{"a-${VAR:-b}-c", "a-b-c"},
		{"${A:-${B:-deep}}", "deep"},
		{"${A:-${B}}", "${B}"},
		{"${VAR:?must be set}", "${VAR:?must be set}"},
		{"${VAR:+alt}", "${VAR:+alt}"},
		{"$$", "$"},
		{"$${VAR:-x}", "${VAR:-x}"},
		{"cost: 5$", "cost: 5$"},
		{"${unclosed", "${unclosed"},
		{"${}", "${}"},
		{"${-x}", "${-x}"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := interpolate(tt.in); got != tt.want {
				t.Errorf("interpolate(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	// Defaults nested deeper than maxNesting are kept as written.
	deep := strings.Repeat("${A:-", maxNesting+4) + "x" + strings.Repeat("}", maxNesting+4)
	if got, want := interpolate(deep), strings.Repeat("${A:-", 4)+"x"+strings.Repeat("}", 4); got != want {
		t.Errorf("interpolate(deep) = %q, want %q", got, want)
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
