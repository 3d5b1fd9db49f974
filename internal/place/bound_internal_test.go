package place

import (
	"math/rand/v2"
	"testing"
)

// TestBestMix checks the knapsack behind the lower bound against plain enumeration: it must
// never be below the best allocatable capacity of node VMs that fit on a host, and it is exact
// while the search stays within its work limit.
func TestBestMix(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 5))
		p := &planner{}
		tax := vec{int64(rng.IntN(500)), int64(rng.IntN(1 << 30))}
		for range 1 + rng.IntN(3) {
			size := vec{int64(1000 + 1000*rng.IntN(16)), int64(1+rng.IntN(64)) << 30}
			p.shapes = append(p.shapes, shape{size: size, alloc: size.sub(tax), cost: size.add(vec{100, 256 << 20})})
		}
		host := vec{int64(8000 + 8000*rng.IntN(8)), int64(32+32*rng.IntN(8)) << 30}
		for d := range 2 {
			want := enumerate(p.shapes, host, d)
			if got := p.bestMix(host, d); got < want || got > want+1 {
				t.Errorf("seed %d, resource %d: bestMix %d, enumeration %d", seed, d, got, want)
			}
		}
	}
}

func enumerate(shapes []shape, room vec, d int) int64 {
	if len(shapes) == 0 {
		return 0
	}
	s := shapes[0]
	best := int64(0)
	for k := int64(0); s.cost.scale(k).fits(room); k++ {
		best = max(best, k*pick(s.alloc, d)+enumerate(shapes[1:], room.sub(s.cost.scale(k)), d))
	}
	return best
}

func TestFitTree(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tr := newFitTree(3)
	free := make([]vec, 0)
	for step := range 2000 {
		if len(free) < 100 && rng.IntN(4) == 0 {
			free = append(free, vec{none, none})
			tr.grow(len(free))
		}
		if len(free) == 0 {
			continue
		}
		i := rng.IntN(len(free))
		free[i] = vec{int64(rng.IntN(10)) - 1, int64(rng.IntN(10)) - 1}
		if free[i].cpu < 0 || free[i].mem < 0 {
			free[i] = vec{none, none}
		}
		tr.set(i, free[i])
		need := vec{int64(rng.IntN(9)), int64(rng.IntN(9))}
		from := rng.IntN(len(free) + 1)
		want := -1
		for j := from; j < len(free); j++ {
			if need.fits(free[j]) {
				want = j
				break
			}
		}
		if got := tr.next(from, need); got != want {
			t.Fatalf("step %d: next(%d, %v) = %d, want %d", step, from, need, got, want)
		}
	}
}

func TestFormats(t *testing.T) {
	tests := []struct{ got, want string }{
		{fmtCPU(15750), "15.75"},
		{fmtCPU(100), "0.1"},
		{fmtMem(64<<30+256<<20, false), "64.25Gi"},
		{fmtMem(31<<30+512<<20, false), "31.5Gi"},
		{fmtMem(1<<30+1, true), "1.01Gi"},
		{fmtMem(512, false), "512"},
		{fmtShort(vec{4100, 0}), "4.1 CPU"},
		{fmtShort(vec{100, 33 << 30}), "0.1 CPU and 33Gi memory"},
		{fmtLabels(map[string]string{"zone": "a", "rack": "r1"}), "{rack: r1, zone: a}"},
		{selectorKey(map[string]string{"zone": "a", "rack": "r1"}), "rack=r1,zone=a"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
