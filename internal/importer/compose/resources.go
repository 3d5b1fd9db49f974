package compose

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
)

// maxCPUs bounds a CPU count, so that millicores fit in any quantity.
const maxCPUs = 1 << 20

// deploy reads deploy.replicas (or the legacy scale) and the resources: deploy limits, else
// the legacy cpus and mem_limit, else deploy reservations, else mem_reservation.
func (b *builder) deploy() {
	dp := b.p.Child("deploy")
	var replicas *int32
	if n := b.dep.get("replicas"); n != nil {
		if v, ok := b.r.integer(n, dp.Child("replicas"), 0, v1alpha1.MaxReplicas); ok {
			r := int32(v)
			replicas = &r
			b.from("spec.replicas", n, dp.Child("replicas"))
		}
	}
	if n, p := b.get("scale"); n != nil {
		if v, ok := b.r.integer(n, p, 0, v1alpha1.MaxReplicas); ok {
			switch {
			case replicas == nil:
				r := int32(v)
				replicas = &r
				b.from("spec.replicas", n, p)
			case int64(*replicas) != v:
				b.r.errorf(b.r.resolve(n), p, "keep deploy.replicas and remove scale",
					"scale (%d) and deploy.replicas (%d) disagree", v, *replicas)
			}
		}
	}
	b.w.Spec.Replicas = replicas

	rp := dp.Child("resources")
	res, _ := b.r.mapping(b.dep.get("resources"), rp)
	limits, _ := b.r.mapping(res.get("limits"), rp.Child("limits"))
	reservations, _ := b.r.mapping(res.get("reservations"), rp.Child("reservations"))

	cpus := []origin{
		{limits.get("cpus"), rp.Child("limits", "cpus")},
		{b.f.get("cpus"), b.p.Child("cpus")},
		{reservations.get("cpus"), rp.Child("reservations", "cpus")},
	}
	for _, o := range cpus {
		if q, ok := b.quantity(o, parseCPU, cpuHint); ok && b.w.Spec.Resources.CPU.IsZero() {
			b.w.Spec.Resources.CPU = q
			b.from("spec.resources.cpu", o.n, o.p)
		}
	}
	memory := []origin{
		{limits.get("memory"), rp.Child("limits", "memory")},
		{b.f.get("mem_limit"), b.p.Child("mem_limit")},
		{reservations.get("memory"), rp.Child("reservations", "memory")},
		{b.f.get("mem_reservation"), b.p.Child("mem_reservation")},
	}
	for _, o := range memory {
		if q, ok := b.quantity(o, parseMemory, memoryHint); ok && b.w.Spec.Resources.Memory.IsZero() {
			b.w.Spec.Resources.Memory = q
			b.from("spec.resources.memory", o.n, o.p)
		}
	}
}

const (
	cpuHint    = "write a number of CPUs such as 0.5 or 2"
	memoryHint = "write a number of bytes or a size such as 512m or 1g (units b, k, m, g, 1024-based)"
)

// quantity parses one resource value. A zero means no limit in compose and is not kept.
func (b *builder) quantity(o origin, parse func(string) (resource.Quantity, error), hint string) (resource.Quantity, bool) {
	s := b.r.scalar(o.n, o.p, "a number or a string", hint)
	if s == nil {
		return resource.Quantity{}, false
	}
	text, ok := b.r.text(s, o.p)
	if !ok {
		return resource.Quantity{}, false
	}
	if strings.TrimSpace(text) == "" && strings.Contains(s.Value, "$") {
		return resource.Quantity{}, false // an unset variable left it empty, with a warning
	}
	q, err := parse(strings.TrimSpace(text))
	if err != nil {
		b.r.errorf(s, o.p, hint, "%v", err)
		return resource.Quantity{}, false
	}
	return q, !q.IsZero()
}

var (
	decimalNumber = regexp.MustCompile(`^([0-9]{1,20}(\.[0-9]{0,20})?|\.[0-9]{1,20})([eE][-+]?[0-9]{1,2})?$`)
	sizeNumber    = regexp.MustCompile(`^([0-9]{1,20}(?:\.[0-9]{1,20})?) ?([a-zA-Z]*)$`)
)

// parseCPU parses a compose CPU count (0.5, "1.5", 2) into millicores, rounding up so that a
// tiny share is not lost.
func parseCPU(s string) (resource.Quantity, error) {
	if !decimalNumber.MatchString(s) {
		return resource.Quantity{}, fmt.Errorf("invalid CPU count %q", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return resource.Quantity{}, fmt.Errorf("invalid CPU count %q", s)
	}
	if r.Cmp(big.NewRat(maxCPUs, 1)) > 0 {
		return resource.Quantity{}, fmt.Errorf("CPU count %s is too large", s)
	}
	milli := ceil(r.Mul(r, big.NewRat(1000, 1)))
	return *resource.NewMilliQuantity(milli, resource.DecimalSI), nil
}

// memoryUnits are compose's byte units, 1024-based, in lower case. The binary spellings (ki,
// mib, ...) are accepted too.
var memoryUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1 << 10, "ki": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mi": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gi": 1 << 30, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1 << 40, "ti": 1 << 40, "tib": 1 << 40,
}

var errMemory = errors.New("invalid memory size")

// parseMemory parses a compose byte size ("512M", "1g", "256m", "1024k", 1073741824) into a
// quantity of bytes, printed in Ki, Mi, Gi ... when it is a whole number of them.
func parseMemory(s string) (resource.Quantity, error) {
	m := sizeNumber.FindStringSubmatch(s)
	if m == nil {
		return resource.Quantity{}, fmt.Errorf("%w %q", errMemory, s)
	}
	unit, ok := memoryUnits[strings.ToLower(m[2])]
	if !ok {
		return resource.Quantity{}, fmt.Errorf("%w %q: unknown unit %q", errMemory, s, m[2])
	}
	r, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return resource.Quantity{}, fmt.Errorf("%w %q", errMemory, s)
	}
	r.Mul(r, new(big.Rat).SetInt64(unit))
	bytes := new(big.Int).Quo(r.Num(), r.Denom()) // whole bytes, as compose counts them
	if !bytes.IsInt64() || bytes.Int64() > 1<<62 {
		return resource.Quantity{}, fmt.Errorf("memory size %s is too large", s)
	}
	return *resource.NewQuantity(bytes.Int64(), resource.BinarySI), nil
}

// ceil rounds a non-negative rational up to an integer.
func ceil(r *big.Rat) int64 {
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if m.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return q.Int64()
}
