package diag

import "testing"

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "a.yaml", Line: 3, Col: 7, Path: "spec.replicas", Msg: "bad", Hint: "fix it"}, "a.yaml:3:7: spec.replicas: bad (fix it)"},
		{Error{File: "a.yaml", Line: 3, Msg: "bad"}, "a.yaml:3: bad"},
		{Error{File: "a.yaml", Msg: "unreadable"}, "a.yaml: unreadable"},
		{Error{Path: "x", Msg: "no file", Hint: "h"}, "x: no file (h)"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestListSortAndErr(t *testing.T) {
	var empty List
	if empty.Err() != nil {
		t.Error("an empty list is an error")
	}
	l := List{{File: "b", Line: 1, Msg: "x"}, {File: "a", Line: 9, Msg: "y"}, {File: "a", Line: 2, Col: 5, Msg: "z"}}
	l.Sort()
	if got := l.Error(); got != "a:2:5: z\na:9: y\nb:1: x" {
		t.Errorf("sorted list prints %q", got)
	}
	if l.Err() == nil {
		t.Error("a non-empty list is no error")
	}
}
