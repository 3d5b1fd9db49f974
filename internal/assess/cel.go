package assess

import (
	"path"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"

	"strata.dev/strata/internal/osrelease"
)

// newEnv declares what rules can use: the variable `workload` (a map), the string extension
// functions (upperAscii, replace, join, ...), cel.bind (a name for a value within an
// expression), endOfLife(string), endOfLifeEntry(string) and cleanPath(string).
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
