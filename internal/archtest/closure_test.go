package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// node is one package of the import graph: a package of the module or any
// package it depends on, the standard library's and other modules' included.
type node struct {
	Imports []string // full import paths of its non-test files
	Module  string   // the module that holds it; "" for the standard library
}

// graph is the import graph of the module's packages and everything they
// depend on, by full import path.
type graph map[string]node

// layer bounds the dependency closure of the packages in scope: every
// package they reach through imports, directly or through other packages,
// not only their own imports. It is an allow list: what it does not name,
// the closure must not hold.
type layer struct {
	scope  string   // the packages the layer covers (a pattern, as in rule)
	except []string // packages in scope that the layer does not cover
	// deps lists every package of the module the closure may hold, besides
	// the package itself and its own subpackages. Use nothing for "no
	// package of the module".
	deps []string
	// modules, when not nil, lists every module outside this one that the
	// module's packages in the closure may import (a module path matches
	// itself and the paths below it). The standard library is always
	// allowed, and what an allowed module imports in turn is its own choice.
	modules []string
	why     string // one line that says why the layer is bounded so
}

// covers reports whether l applies to the package p (relative).
func (l layer) covers(p string) bool {
	return match(l.scope, p) && !matchAny(l.except, p)
}

// checkLayers applies layers to every package of the module in g and
// returns every violation: a package of the module, or a module outside it,
// that a package's closure holds and its layer does not allow. Each names
// the path of imports that leads there. Violations come in the order of the
// packages' paths, then of the dependencies' paths.
func checkLayers(g graph, layers []layer) []violation {
	var out []violation
	for _, full := range sortedKeys(g) {
		p, ours := relative(full)
		if !ours {
			continue
		}
		var reach *reachable
		for _, l := range layers {
			if !l.covers(p) {
				continue
			}
			if reach == nil {
				reach = walk(g, full)
			}
			out = append(out, l.violations(g, p, reach)...)
		}
	}
	return out
}

// violations lists what of the closure reach of package p (relative) l
// does not allow.
func (l layer) violations(g graph, p string, reach *reachable) []violation {
	var out []violation
	for _, dep := range reach.order {
		rel, ours := relative(dep)
		if !ours || rel == p || strings.HasPrefix(rel, p+"/") || matchAny(l.deps, rel) {
			continue
		}
		out = append(out, violation{Pkg: p, Import: dep, Via: reach.via(dep), Msg: l.depsMsg()})
	}
	if l.modules == nil {
		return out
	}
	seen := map[string]bool{}
	for _, from := range append([]string{reach.from}, reach.order...) {
		rel, ours := relative(from)
		if !ours {
			continue
		}
		var via []string
		if from != reach.from {
			via = append(reach.via(from), rel)
		}
		for _, imp := range g[from].Imports {
			mod, std := moduleOf(g, imp)
			if std || mod == module || seen[mod] || allowedModule(l.modules, mod) {
				continue
			}
			seen[mod] = true
			out = append(out, violation{Pkg: p, Import: imp, Via: via,
				Msg: fmt.Sprintf("the closure of %s may import, outside this module, only the standard library and %s; %s is in module %s (%s)",
					l.scope, listOr(l.modules, "no other module"), imp, mod, l.why)})
		}
	}
	return out
}

func (l layer) depsMsg() string {
	if len(l.deps) == 0 {
		return fmt.Sprintf("%s may depend on no package of this module, directly or not (%s)", l.scope, l.why)
	}
	return fmt.Sprintf("%s may depend, directly or not, only on %s (%s)", l.scope, strings.Join(l.deps, ", "), l.why)
}

func listOr(xs []string, none string) string {
	if len(xs) == 0 {
		return none
	}
	return strings.Join(xs, ", ")
}

// allowedModule reports whether mod is one of modules or below one of them.
func allowedModule(modules []string, mod string) bool {
	for _, m := range modules {
		if mod == m || strings.HasPrefix(mod, m+"/") {
			return true
		}
	}
	return false
}

// moduleOf returns the module that holds the package path, or std when the
// package belongs to the standard library (whose first path element has no
// dot). A package the listing did not describe counts as its own module.
func moduleOf(g graph, path string) (mod string, std bool) {
	if n, ok := g[path]; ok && n.Module != "" {
		return n.Module, false
	}
	first, _, _ := strings.Cut(path, "/")
	if !strings.Contains(first, ".") {
		return "", true
	}
	return path, false
}

// reachable is the dependency closure of one package: every package its
// imports reach, with the import each was first reached by.
type reachable struct {
	from   string            // the package the walk started at (full path)
	order  []string          // every package reached, sorted
	parent map[string]string // package -> the package that imports it on a shortest path
}

// walk finds the closure of from in g, breadth first, so that via names a
// shortest path.
func walk(g graph, from string) *reachable {
	r := &reachable{from: from, parent: map[string]string{from: ""}}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, imp := range g[p].Imports {
			if _, seen := r.parent[imp]; seen {
				continue
			}
			r.parent[imp] = p
			r.order = append(r.order, imp)
			queue = append(queue, imp)
		}
	}
	slices.Sort(r.order)
	return r
}

// via returns the packages between the start of the walk and dep, in
// import order, module-relative where they are the module's; nil when the
// start imports dep itself.
func (r *reachable) via(dep string) []string {
	var chain []string
	for p := r.parent[dep]; p != r.from && p != ""; p = r.parent[p] {
		name := p
		if rel, ours := relative(p); ours {
			name = rel
		}
		chain = append(chain, name)
	}
	slices.Reverse(chain)
	return chain
}

func sortedKeys(g graph) []string {
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// listGraph runs `go list -deps` over every package of the module in dir and
// returns the import graph of their non-test files, plus the load errors go
// list reported (a package that does not build is still listed, with the
// imports it could read).
func listGraph(dir string) (graph, []string, error) {
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Imports,Module,Error", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, nil, fmt.Errorf("go list -deps in %s: %w: %s", dir, err, stderr.String())
	}
	type listed struct {
		ImportPath string
		Imports    []string
		Module     *struct{ Path string }
		Error      *struct{ Err string }
	}
	g := graph{}
	var loadErrs []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var l listed
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, nil, fmt.Errorf("decode go list -deps output: %w", err)
		}
		if l.Error != nil {
			loadErrs = append(loadErrs, fmt.Sprintf("%s: %s", l.ImportPath, l.Error.Err))
		}
		n := node{Imports: l.Imports}
		if l.Module != nil {
			n.Module = l.Module.Path
		}
		g[l.ImportPath] = n
	}
	return g, loadErrs, nil
}
