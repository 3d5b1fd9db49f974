// Package script is the small command vocabulary of strata's shared driver
// suite. Each Script is a real command line for the busybox test image
// (package testimage), so a real driver runs it for real, and a value the fake
// driver interprets, so the fake can model exactly what the suite observes.
//
// The vocabulary, as busybox command lines (N, CODE, MIB are decimal
// integers; NAME is an environment variable name; TEXT and PATH use only
// letters, digits, space and "_.,:=+-/"; a WORD does not start with '-'):
//
//	Sleep       sleep N                                runs N seconds, exits 0; has no SIGTERM handler (see below)
//	Serve       sh -c 'trap "exit 143" TERM; echo serving; sleep N & wait'
//	                                                   prints "serving" once its SIGTERM handler is set, runs N seconds, exits 0;
//	                                                   SIGTERM ends it at once with 143
//	IgnoreTerm  sh -c 'trap "" TERM; echo ignoring; sleep N & wait'
//	                                                   prints "ignoring" once it ignores SIGTERM, runs N seconds, exits 0
//	Exit        sh -c 'exit CODE'                      exits with CODE at once
//	Echo        echo WORD...                           prints the words, space-separated, and a newline
//	PrintEnv    sh -c 'echo "NAME=$NAME"; ...'         prints NAME=value for each name (empty value when unset)
//	Output      sh -c 'echo "TEXT"; echo "TEXT" >&2; exit CODE'
//	                                                   prints the first text on stdout, the second on stderr, exits CODE
//	Cat         cat                                    copies stdin to stdout (no stdin: exits 0 at once)
//	ReadFile    cat PATH                               prints the file; exits 1 when it cannot be read
//	WriteFile   sh -c 'echo "TEXT" > PATH'             writes TEXT and a newline to the file; exits non-zero when it cannot
//	Allocate    dd if=/dev/zero of=/dev/null bs=MIBM count=1
//	                                                   holds a buffer of MIB MiB (touched), exits 0; beyond the memory limit the kernel OOM-kills it
//
// Sleep has no SIGTERM handler. As a container's main process (PID 1 of its
// PID namespace) under runc, the host kernel then ignores SIGTERM from
// outside; gVisor delivers it and sleep dies (143). The suite therefore stops
// a Sleep only without caring how it ends; Serve and IgnoreTerm say what
// SIGTERM does explicitly. The fake models runc.
//
// Parse recognises exactly these forms: it extracts the parameters and
// accepts the command only if building the script again gives the same
// argument vector.
package script

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Op names a behaviour of the vocabulary.
type Op string

// The behaviours.
const (
	OpSleep      Op = "sleep"
	OpServe      Op = "serve"
	OpIgnoreTerm Op = "ignore-term"
	OpExit       Op = "exit"
	OpEcho       Op = "echo"
	OpPrintEnv   Op = "print-env"
	OpOutput     Op = "output"
	OpCat        Op = "cat"
	OpReadFile   Op = "read-file"
	OpWriteFile  Op = "write-file"
	OpAllocate   Op = "allocate"
)

// Script is one behaviour and its parameters; only the fields its Op uses are
// set.
type Script struct {
	Op      Op
	Seconds int      // Sleep, Serve, IgnoreTerm
	Code    int      // Exit, Output
	Words   []string // Echo
	Names   []string // PrintEnv
	Stdout  string   // Output
	Stderr  string   // Output
	Path    string   // ReadFile, WriteFile
	Text    string   // WriteFile
	MiB     int      // Allocate
}

// What Serve and IgnoreTerm print once their SIGTERM disposition is set: a
// test that stops them waits for this line in the log first.
const (
	ServeReady      = "serving"
	IgnoreTermReady = "ignoring"
)

// Sleep runs for seconds. It has no SIGTERM handler: as a main process under
// runc it survives SIGTERM, under gVisor it dies of it.
func Sleep(seconds int) []string { return Script{Op: OpSleep, Seconds: seconds}.Argv() }

// Serve runs for seconds and exits with 143 as soon as it gets SIGTERM, like
// a well-behaved server.
func Serve(seconds int) []string { return Script{Op: OpServe, Seconds: seconds}.Argv() }

// IgnoreTerm runs for seconds and explicitly ignores SIGTERM.
func IgnoreTerm(seconds int) []string { return Script{Op: OpIgnoreTerm, Seconds: seconds}.Argv() }

// Exit exits with code at once.
func Exit(code int) []string { return Script{Op: OpExit, Code: code}.Argv() }

// Echo prints the words separated by spaces and a newline.
func Echo(words ...string) []string { return Script{Op: OpEcho, Words: words}.Argv() }

// PrintEnv prints one line NAME=value per name.
func PrintEnv(names ...string) []string { return Script{Op: OpPrintEnv, Names: names}.Argv() }

// Output prints stdout and stderr (each with a newline) and exits with code.
func Output(stdout, stderr string, code int) []string {
	return Script{Op: OpOutput, Stdout: stdout, Stderr: stderr, Code: code}.Argv()
}

// Cat copies stdin to stdout.
func Cat() []string { return Script{Op: OpCat}.Argv() }

// ReadFile prints the file at path.
func ReadFile(path string) []string { return Script{Op: OpReadFile, Path: path}.Argv() }

// WriteFile writes text and a newline to the file at path.
func WriteFile(path, text string) []string {
	return Script{Op: OpWriteFile, Path: path, Text: text}.Argv()
}

// Allocate fills a buffer of mib MiB.
func Allocate(mib int) []string { return Script{Op: OpAllocate, MiB: mib}.Argv() }

// Argv returns the script's busybox command line.
func (s Script) Argv() []string {
	switch s.Op {
	case OpSleep:
		return []string{"sleep", strconv.Itoa(s.Seconds)}
	case OpServe:
		return []string{"sh", "-c", fmt.Sprintf(`trap "exit 143" TERM; echo %s; sleep %d & wait`, ServeReady, s.Seconds)}
	case OpIgnoreTerm:
		return []string{"sh", "-c", fmt.Sprintf(`trap "" TERM; echo %s; sleep %d & wait`, IgnoreTermReady, s.Seconds)}
	case OpExit:
		return []string{"sh", "-c", fmt.Sprintf("exit %d", s.Code)}
	case OpEcho:
		return append([]string{"echo"}, s.Words...)
	case OpPrintEnv:
		parts := make([]string, len(s.Names))
		for i, n := range s.Names {
			parts[i] = fmt.Sprintf(`echo "%s=$%s"`, n, n)
		}
		return []string{"sh", "-c", strings.Join(parts, "; ")}
	case OpOutput:
		return []string{"sh", "-c", fmt.Sprintf(`echo "%s"; echo "%s" >&2; exit %d`, s.Stdout, s.Stderr, s.Code)}
	case OpCat:
		return []string{"cat"}
	case OpReadFile:
		return []string{"cat", s.Path}
	case OpWriteFile:
		return []string{"sh", "-c", fmt.Sprintf(`echo "%s" > %s`, s.Text, s.Path)}
	case OpAllocate:
		return []string{"dd", "if=/dev/zero", "of=/dev/null", fmt.Sprintf("bs=%dM", s.MiB), "count=1"}
	}
	return nil
}

// ErrUnknown reports a command line outside the vocabulary.
var ErrUnknown = errors.New("command is not in the driver suite's vocabulary")

// Parse returns the script whose command line is argv, or an error wrapping
// ErrUnknown.
func Parse(argv []string) (Script, error) {
	s, ok := parse(argv)
	if !ok || !s.valid() || !slices.Equal(s.Argv(), argv) {
		return Script{}, fmt.Errorf("%w: %q", ErrUnknown, argv)
	}
	return s, nil
}

func parse(argv []string) (Script, bool) {
	if len(argv) == 0 {
		return Script{}, false
	}
	switch argv[0] {
	case "sleep":
		n, ok := number(argv, 1)
		return Script{Op: OpSleep, Seconds: n}, ok
	case "echo":
		return Script{Op: OpEcho, Words: slices.Clone(argv[1:])}, true
	case "cat":
		if len(argv) == 1 {
			return Script{Op: OpCat}, true
		}
		if len(argv) == 2 {
			return Script{Op: OpReadFile, Path: argv[1]}, true
		}
	case "dd":
		if len(argv) == 5 {
			mib, ok := strings.CutPrefix(argv[3], "bs=")
			mib, ok2 := strings.CutSuffix(mib, "M")
			n, err := strconv.Atoi(mib)
			return Script{Op: OpAllocate, MiB: n}, ok && ok2 && err == nil
		}
	case "sh":
		if len(argv) == 3 && argv[1] == "-c" {
			return parseShell(argv[2])
		}
	}
	return Script{}, false
}

// parseShell recognises the sh -c forms by their fixed prefixes.
func parseShell(src string) (Script, bool) {
	var s Script
	switch {
	case strings.HasPrefix(src, `trap "exit 143" TERM; echo `+ServeReady+`; sleep `):
		s.Op = OpServe
		_, err := fmt.Sscanf(src, `trap "exit 143" TERM; echo `+ServeReady+`; sleep %d & wait`, &s.Seconds)
		return s, err == nil
	case strings.HasPrefix(src, `trap "" TERM; echo `+IgnoreTermReady+`; sleep `):
		s.Op = OpIgnoreTerm
		_, err := fmt.Sscanf(src, `trap "" TERM; echo `+IgnoreTermReady+`; sleep %d & wait`, &s.Seconds)
		return s, err == nil
	case strings.HasPrefix(src, "exit "):
		s.Op = OpExit
		n, err := strconv.Atoi(strings.TrimPrefix(src, "exit "))
		s.Code = n
		return s, err == nil
	case strings.HasPrefix(src, `echo "`) && strings.Contains(src, `" >&2; exit `):
		s.Op = OpOutput
		out, rest, ok := strings.Cut(strings.TrimPrefix(src, `echo "`), `"; echo "`)
		errText, code, ok2 := strings.Cut(rest, `" >&2; exit `)
		n, err := strconv.Atoi(code)
		s.Stdout, s.Stderr, s.Code = out, errText, n
		return s, ok && ok2 && err == nil
	case strings.HasPrefix(src, `echo "`) && strings.Contains(src, `" > `):
		s.Op = OpWriteFile
		text, p, ok := strings.Cut(strings.TrimPrefix(src, `echo "`), `" > `)
		s.Text, s.Path = text, p
		return s, ok
	case strings.HasPrefix(src, `echo "`):
		s.Op = OpPrintEnv
		for _, part := range strings.Split(src, "; ") {
			name, _, ok := strings.Cut(strings.TrimPrefix(part, `echo "`), "=")
			if !ok {
				return s, false
			}
			s.Names = append(s.Names, name)
		}
		return s, true
	}
	return s, false
}

// valid checks the parameters are within the vocabulary's alphabet, so the
// command line means the same to busybox as to the fake.
func (s Script) valid() bool {
	switch s.Op {
	case OpSleep, OpServe, OpIgnoreTerm:
		return s.Seconds >= 0
	case OpExit, OpOutput:
		return s.Code >= 0 && s.Code <= 255 && (s.Op == OpExit || safeText(s.Stdout) && safeText(s.Stderr))
	case OpEcho:
		for _, w := range s.Words {
			if w == "" || w[0] == '-' || strings.ContainsAny(w, "\\\n") {
				return false
			}
		}
		return true
	case OpPrintEnv:
		if len(s.Names) == 0 {
			return false
		}
		for _, n := range s.Names {
			if !envName(n) {
				return false
			}
		}
		return true
	case OpCat:
		return true
	case OpReadFile:
		return safePath(s.Path)
	case OpWriteFile:
		return safePath(s.Path) && safeText(s.Text)
	case OpAllocate:
		return s.MiB > 0
	}
	return false
}

func number(argv []string, i int) (int, bool) {
	if len(argv) != i+1 {
		return 0, false
	}
	n, err := strconv.Atoi(argv[i])
	return n, err == nil
}

// safeText reports whether t uses only letters, digits, space and "_.,:=+-/".
func safeText(t string) bool {
	for _, c := range t {
		if !isAlnum(c) && !strings.ContainsRune(" _.,:=+-/", c) {
			return false
		}
	}
	return true
}

// safePath reports whether p is an absolute path in the safe alphabet,
// without spaces.
func safePath(p string) bool {
	return strings.HasPrefix(p, "/") && safeText(p) && !strings.Contains(p, " ")
}

func envName(n string) bool {
	if n == "" || n[0] >= '0' && n[0] <= '9' {
		return false
	}
	for _, c := range n {
		if !isAlnum(c) && c != '_' {
			return false
		}
	}
	return true
}

func isAlnum(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
