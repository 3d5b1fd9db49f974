package assess

import (
	"path"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"

	"strata.dev/strata/internal/osrelease"
)

// newEnv declares what rules can use: the variable `workload` (a map), the string extension
// functions (upperAscii, replace, join, ...), cel.bind (a name for a value within an
// expression), endOfLife(string), endOfLifeEntry(string), cleanPath(string) and
// pathOverlaps(string, list(string)).
func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("workload", cel.MapType(cel.StringType, cel.DynType)),
		ext.Strings(),
		ext.Bindings(),
		cel.CrossTypeNumericComparisons(true),
		cel.Function("endOfLife",
			cel.Overload("endOfLife_string", []*cel.Type{cel.StringType}, cel.BoolType,
				cel.UnaryBinding(endOfLife))),
		cel.Function("endOfLifeEntry",
			cel.Overload("endOfLifeEntry_string", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(endOfLifeEntry))),
		cel.Function("cleanPath",
			cel.Overload("cleanPath_string", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(cleanPath))),
		cel.Function("pathOverlaps",
			cel.Overload("pathOverlaps_string_list", []*cel.Type{cel.StringType, cel.ListType(cel.StringType)}, cel.BoolType,
				cel.BinaryBinding(pathOverlaps))),
	)
}

// cleanPath gives the shortest path naming the same place, by lexical processing only
// (Go's path.Clean): "/var/run/../run//docker.sock/" is "/run/docker.sock", "./conf/" is
// "conf", "conf/../../etc" is "../etc". Rules compare host paths after cleaning them, so a
// path cannot slip past a prefix test by its spelling.
func cleanPath(v ref.Val) ref.Val {
	s, ok := v.(types.String)
	if !ok {
		return types.NewErr("cleanPath: expected a string, got %s", v.Type())
	}
	return types.String(path.Clean(string(s)))
}

// endOfLifeEntry names the row of the end-of-life table that matches, or "".
func endOfLifeEntry(v ref.Val) ref.Val {
	s, ok := v.(types.String)
	if !ok {
		return types.NewErr("endOfLifeEntry: expected a string, got %s", v.Type())
	}
	entry, eol := osrelease.EndOfLife(string(s))
	if !eol {
		return types.String("")
	}
	return types.String(entry)
}

func endOfLife(v ref.Val) ref.Val {
	s, ok := v.(types.String)
	if !ok {
		return types.NewErr("endOfLife: expected a string, got %s", v.Type())
	}
	_, eol := osrelease.EndOfLife(string(s))
	return types.Bool(eol)
}

// pathOverlaps reports whether a path and one of the places share files: the path is the
// place, lies under it, or holds it ("/" holds every absolute path). Both are cleaned first;
// a relative path overlaps only relative places.
func pathOverlaps(p, places ref.Val) ref.Val {
	s, ok := p.(types.String)
	if !ok {
		return types.NewErr("pathOverlaps: expected a string, got %s", p.Type())
	}
	l, ok := places.(traits.Lister)
	if !ok {
		return types.NewErr("pathOverlaps: expected a list of strings, got %s", places.Type())
	}
	a := path.Clean(string(s))
	for it := l.Iterator(); it.HasNext() == types.True; {
		v := it.Next()
		place, ok := v.(types.String)
		if !ok {
			return types.NewErr("pathOverlaps: expected a list of strings, found %s", v.Type())
		}
		b := path.Clean(string(place))
		if a == b || within(a, b) || within(b, a) {
			return types.True
		}
	}
	return types.False
}

// within reports whether the cleaned path a lies strictly under the cleaned path dir.
func within(a, dir string) bool {
	if dir == "/" {
		return a != "/" && strings.HasPrefix(a, "/")
	}
	return strings.HasPrefix(a, dir+"/")
}
