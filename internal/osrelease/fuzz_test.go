package osrelease

import (
	"testing"

	"strata.dev/strata/api/v1alpha1"
)

func FuzzParse(f *testing.F) {
	for _, c := range cases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := Parse(s)
		switch r.Family {
		case v1alpha1.OSLinux, v1alpha1.OSWindows, v1alpha1.OSOther:
		default:
			t.Fatalf("Parse(%q).Family = %q", s, r.Family)
		}
		if again := Parse(s); again != r {
			t.Fatalf("Parse(%q) is not deterministic: %+v, then %+v", s, r, again)
		}
		// The normalized version is a fixed point, so EndOfLife agrees on both forms.
		if n := Parse(r.Version); n != r {
			t.Fatalf("Parse(%q) = %+v, but Parse(%q) = %+v", s, r, r.Version, n)
		}
		e1, eol1 := EndOfLife(s)
		e2, eol2 := EndOfLife(r.Version)
		if e1 != e2 || eol1 != eol2 {
			t.Fatalf("EndOfLife(%q) = %q, %v but EndOfLife(%q) = %q, %v", s, e1, eol1, r.Version, e2, eol2)
		}
		if eol1 != (e1 != "") {
			t.Fatalf("EndOfLife(%q) = %q, %v", s, e1, eol1)
		}
	})
}
