package place

import (
	"math"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"strata.dev/strata/api/v1alpha1"
)

// vec is an amount of the two resources the planner packs: milli-CPU and bytes of memory.
type vec struct{ cpu, mem int64 }

func (a vec) add(b vec) vec        { return vec{a.cpu + b.cpu, a.mem + b.mem} }
func (a vec) sub(b vec) vec        { return vec{a.cpu - b.cpu, a.mem - b.mem} }
func (a vec) fits(room vec) bool   { return a.cpu <= room.cpu && a.mem <= room.mem }
func (a vec) scale(n int64) vec    { return vec{a.cpu * n, a.mem * n} }
func (a vec) positive() bool       { return a.cpu > 0 && a.mem > 0 }
func (a vec) max(b vec) vec        { return vec{max(a.cpu, b.cpu), max(a.mem, b.mem)} }
func (a vec) shortOf(room vec) vec { return vec{max(0, a.cpu-room.cpu), max(0, a.mem-room.mem)} }

// frac is a over b, per resource; 0 where b is not positive.
func (a vec) frac(b vec) (cpu, mem float64) {
	if b.cpu > 0 {
		cpu = float64(a.cpu) / float64(b.cpu)
	}
	if b.mem > 0 {
		mem = float64(a.mem) / float64(b.mem)
	}
	return cpu, mem
}

// dominant is the larger of a's shares of b.
func (a vec) dominant(b vec) float64 {
	c, m := a.frac(b)
	return math.Max(c, m)
}

// maxAmount bounds every amount read from the input (a petabyte of memory, a million million
// milli-CPU), so that sums of many of them cannot overflow int64.
const maxAmount = int64(1) << 50

var (
	maxCPUQuantity = *resource.NewMilliQuantity(maxAmount, resource.DecimalSI)
	maxMemQuantity = *resource.NewQuantity(maxAmount, resource.BinarySI)
)

// milliCPU converts a CPU quantity to milli-CPU, rounding up and clamping to maxAmount.
func milliCPU(q resource.Quantity) int64 {
	if q.Sign() <= 0 {
		return 0
	}
	if q.Cmp(maxCPUQuantity) >= 0 {
		return maxAmount
	}
	return q.MilliValue()
}

// bytesOf converts a memory quantity to bytes, rounding up and clamping to maxAmount.
func bytesOf(q resource.Quantity) int64 {
	if q.Sign() <= 0 {
		return 0
	}
	if q.Cmp(maxMemQuantity) >= 0 {
		return maxAmount
	}
	return q.Value()
}

func capacityVec(c v1alpha1.Capacity) vec { return vec{milliCPU(c.CPU), bytesOf(c.Memory)} }

func overheadVec(c *v1alpha1.Capacity, def v1alpha1.Capacity) vec {
	if c == nil {
		return capacityVec(def)
	}
	return capacityVec(*c)
}

// fmtCPU prints milli-CPU as cores: 15750 is "15.75".
func fmtCPU(m int64) string {
	return strconv.FormatFloat(float64(m)/1000, 'f', -1, 64)
}

var memUnits = []struct {
	name string
	size int64
}{{"Pi", 1 << 50}, {"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}}

// fmtMem prints bytes in binary units with at most two decimals: 64Gi + 256Mi is "64.25Gi".
// Rounding is to the nearest, or up when up is set (for shortfalls, which must never read 0).
func fmtMem(b int64, up bool) string {
	for _, u := range memUnits {
		if b >= u.size {
			v := float64(b) / float64(u.size) * 100
			if up {
				v = math.Ceil(v - 1e-9)
			} else {
				v = math.Round(v)
			}
			return strconv.FormatFloat(v/100, 'f', -1, 64) + u.name
		}
	}
	return strconv.FormatInt(b, 10)
}

// fmtVec prints an amount as "2 CPU, 4Gi".
func fmtVec(v vec) string { return fmtCPU(v.cpu) + " CPU, " + fmtMem(v.mem, false) }

// fmtShort prints the resources of a shortfall that are short, rounded up:
// "4.1 CPU and 32.75Gi memory".
func fmtShort(s vec) string {
	var parts []string
	if s.cpu > 0 {
		parts = append(parts, fmtCPU(s.cpu)+" CPU")
	}
	if s.mem > 0 {
		parts = append(parts, fmtMem(s.mem, true)+" memory")
	}
	return strings.Join(parts, " and ")
}

// fmtLabels prints a selector as "{rack: r1, zone: a}", keys sorted.
func fmtLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + ": " + m[k])
	}
	b.WriteByte('}')
	return b.String()
}

// round4 rounds a share to four decimals, for stable output.
func round4(f float64) float64 { return math.Round(f*10000) / 10000 }
