package netpol

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Matches reports whether a label selector selects labels: every matchLabels pair is among
// them, and every matchExpressions requirement holds (In: the key has one of the values;
// NotIn: it has none of them, or the key is absent; Exists; DoesNotExist). An empty selector
// selects everything; a nil one selects nothing.
func Matches(sel *metav1.LabelSelector, labels map[string]string) (bool, error) {
	if sel == nil {
		return false, nil
	}
	for k, v := range sel.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false, nil
		}
	}
	for i, e := range sel.MatchExpressions {
		ok, err := requirement(e, labels)
		if err != nil {
			return false, fmt.Errorf("matchExpressions[%d]: %w", i, err)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func requirement(e metav1.LabelSelectorRequirement, labels map[string]string) (bool, error) {
	v, has := labels[e.Key]
	switch e.Operator {
	case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn:
		if len(e.Values) == 0 {
			return false, fmt.Errorf("key %s: operator %s needs values", e.Key, e.Operator)
		}
		in := has && slices.Contains(e.Values, v)
		return in == (e.Operator == metav1.LabelSelectorOpIn), nil
	case metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
		if len(e.Values) > 0 {
			return false, fmt.Errorf("key %s: operator %s takes no values", e.Key, e.Operator)
		}
		return has == (e.Operator == metav1.LabelSelectorOpExists), nil
	}
	return false, fmt.Errorf("key %s: operator %q: %w", e.Key, e.Operator, ErrUnsupported)
}
