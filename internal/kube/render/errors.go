package render

import (
	"fmt"
	"regexp"
)

// Error is a document that cannot be rendered: which one, which field, what is wrong and
// what to do about it.
type Error struct {
	Kind    string // Workload or Segment
	Name    string
	Field   string // path in the document, such as spec.vm.kernel
	Problem string
	Hint    string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s %s: %s: %s", lower(e.Kind), e.Name, e.Field, e.Problem)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func lower(kind string) string {
	switch kind {
	case "Workload":
		return "workload"
	case "Segment":
		return "segment"
	}
	return kind
}

// dns1035 is what a Service name must be: a DNS label that starts with a letter.
var dns1035 = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// serviceName checks that a workload's name can name its Service and VirtualMachines.
func serviceName(name string) error {
	if !dns1035.MatchString(name) || len(name) > 63 {
		return fmt.Errorf("%q cannot name a Kubernetes Service, whose name must start with a letter", name)
	}
	return nil
}
