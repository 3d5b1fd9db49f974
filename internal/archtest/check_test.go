package archtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// module is the module path; rule patterns are written relative to it.
const module = "strata.dev/strata"

// pkg is what the checker needs to know about one package of the module.
type pkg struct {
	Path    string   // import path relative to the module: "internal/load"
	Name    string   // package name
	Imports []string // full import paths of its non-test files
	LOC     int      // lines of code in its non-test files (not blank, not comments)
}

// rule is one import boundary. A pattern is a path relative to the module,
// either exact ("internal/diag") or a tree ("internal/runtime/..." matches
// internal/runtime and everything below it; "..." matches every package).
type rule struct {
	scope  string   // the packages the rule covers
	except []string // packages in scope that the rule does not cover
	// only, when not nil, lists every package of the module that the packages
	// in scope may import, besides their own subpackages. Use nothing for
	// "no package of the module".
	only []string
	deny []string // packages of the module they must not import
	std  []string // packages outside the module they must not import (exact paths)
	why  string   // one line that says why the boundary exists
}

// nothing is an empty allow list: the scope imports no package of the module.
var nothing = []string{}

// match reports whether the module-relative path p matches pattern. The
// pattern "..." matches every package.
func match(pattern, p string) bool {
	if pattern == "..." {
		return true
	}
	if tree, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == tree || strings.HasPrefix(p, tree+"/")
	}
	return p == pattern
}

func matchAny(patterns []string, p string) bool {
	for _, pattern := range patterns {
		if match(pattern, p) {
			return true
		}
	}
	return false
}

// covers reports whether r applies to the package p.
func (r rule) covers(p string) bool {
	return match(r.scope, p) && !matchAny(r.except, p)
}

// violation is one import that points the wrong way, or a cmd package that
// holds more than wiring.
type violation struct {
	Pkg    string // the offending package, relative to the module
	Import string // the forbidden import (full path); empty for size or name problems
	// Via lists the packages between Pkg and Import when Pkg reaches Import
	// only through other packages; empty for a direct import.
	Via []string
	Msg string
}

func (v violation) String() string {
	switch {
	case v.Import == "":
		return fmt.Sprintf("%s: %s", v.Pkg, v.Msg)
	case len(v.Via) > 0:
		return fmt.Sprintf("%s depends on %s through %s: %s", v.Pkg, v.Import, strings.Join(v.Via, " -> "), v.Msg)
	}
	return fmt.Sprintf("%s imports %s: %s", v.Pkg, v.Import, v.Msg)
}

// cmdRule bounds what a cmd/... package may be: package main, wiring only.
type cmdRule struct {
	scope  string
	maxLOC int
}

// check applies rules and cmd to pkgs and returns every violation, in the
// order of pkgs, then imports, then rules.
func check(pkgs []pkg, rules []rule, cmd cmdRule) []violation {
	var out []violation
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			for _, r := range rules {
				if !r.covers(p.Path) {
					continue
				}
				if msg, bad := r.forbids(p.Path, imp); bad {
					out = append(out, violation{Pkg: p.Path, Import: imp, Msg: msg})
				}
			}
		}
		if match(cmd.scope, p.Path) {
			if p.Name != "main" {
				out = append(out, violation{Pkg: p.Path,
					Msg: fmt.Sprintf("is package %s; cmd/... holds only package main", p.Name)})
			}
			if p.LOC > cmd.maxLOC {
				out = append(out, violation{Pkg: p.Path,
					Msg: fmt.Sprintf("has %d lines of code, more than %d: cmd/... only wires; move the logic to internal/",
						p.LOC, cmd.maxLOC)})
			}
		}
	}
	return out
}

// forbids reports whether r forbids package p (relative) to import imp (full
// path), and why.
func (r rule) forbids(p, imp string) (string, bool) {
	rel, ours := relative(imp)
	if !ours {
		for _, s := range r.std {
			if imp == s {
				return fmt.Sprintf("%s must not import %s (%s)", r.scope, imp, r.why), true
			}
		}
		return "", false
	}
	for _, d := range r.deny {
		if match(d, rel) {
			return fmt.Sprintf("%s must not import %s (%s)", r.scope, d, r.why), true
		}
	}
	if r.only == nil || strings.HasPrefix(rel, p+"/") || matchAny(r.only, rel) {
		return "", false
	}
	if len(r.only) == 0 {
		return fmt.Sprintf("%s may import no package of this module (%s)", r.scope, r.why), true
	}
	return fmt.Sprintf("%s may import only %s (%s)", r.scope, strings.Join(r.only, ", "), r.why), true
}

// relative returns the module-relative form of an import path and whether
// the path belongs to the module at all.
func relative(imp string) (string, bool) {
	if imp == module {
		return ".", true
	}
	rel, ok := strings.CutPrefix(imp, module+"/")
	return rel, ok
}

// listPackages runs `go list` over the whole module and returns its
// packages, with the module-internal ones' line counts filled in, plus the
// load errors go list reported (a package that does not build is still
// listed, with the imports it could read).
func listPackages() ([]pkg, []string, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Name,Dir,GoFiles,Imports,Error", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, nil, fmt.Errorf("go list in %s: %w: %s", root, err, stderr.String())
	}

	type listed struct {
		ImportPath string
		Name       string
		Dir        string
		GoFiles    []string
		Imports    []string
		Error      *struct{ Err string }
	}
	var pkgs []pkg
	var loadErrs []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var l listed
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, nil, fmt.Errorf("decode go list output: %w", err)
		}
		if l.Error != nil {
			loadErrs = append(loadErrs, fmt.Sprintf("%s: %s", l.ImportPath, l.Error.Err))
		}
		rel, ours := relative(l.ImportPath)
		if !ours {
			continue
		}
		loc := 0
		for _, f := range l.GoFiles {
			n, err := linesOfCode(filepath.Join(l.Dir, f))
			if err != nil {
				return nil, nil, err
			}
			loc += n
		}
		pkgs = append(pkgs, pkg{Path: rel, Name: l.Name, Imports: l.Imports, LOC: loc})
	}
	return pkgs, loadErrs, nil
}

// moduleRoot returns the directory of the module the test runs in.
func moduleRoot() (string, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if root == "." || root == "" {
		return "", errors.New("go env GOMOD: not inside a module")
	}
	return root, nil
}

// linesOfCode counts the lines of a Go file that are neither blank nor
// line comments.
func linesOfCode(file string) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, fmt.Errorf("count lines: %w", err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "//") {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("count lines of %s: %w", file, err)
	}
	return n, nil
}
