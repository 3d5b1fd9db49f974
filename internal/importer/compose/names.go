package compose

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// maxLabel is the longest DNS label.
const maxLabel = validation.DNS1123LabelMaxLength

// dnsLabel turns a compose name into a DNS label: lower case, every run of characters other
// than letters and digits becomes one '-', no '-' at either end, at most 63 characters.
// A name with no letter or digit becomes fallback.
func dnsLabel(name, fallback string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(name) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
			dash = false
			continue
		}
		if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimRight(b.String(), "-")
	if len(out) > maxLabel {
		out = strings.TrimRight(out[:maxLabel], "-")
	}
	if out == "" {
		return fallback
	}
	return out
}

// isDNSLabel reports whether s is already a DNS label.
func isDNSLabel(s string) bool {
	return len(validation.IsDNS1123Label(s)) == 0
}

// unique returns base, or base-2, base-3, ... (shortened to stay a DNS label), whichever is
// not yet taken, and takes it.
func unique(base string, taken map[string]bool) string {
	name := base
	for i := 2; taken[name]; i++ {
		suffix := "-" + strconv.Itoa(i)
		b := base
		if len(b)+len(suffix) > maxLabel {
			b = strings.TrimRight(b[:maxLabel-len(suffix)], "-")
		}
		name = b + suffix
	}
	taken[name] = true
	return name
}
