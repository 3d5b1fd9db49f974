package place

// fitTree finds slots with room. Each slot 0..n-1 holds a free amount (or none: -1); the tree
// keeps, for every range of slots, the largest free CPU and the largest free memory in it, so
// that the first slot at or after a position with room for a demand is found without looking
// at the slots of ranges that cannot hold it.
type fitTree struct {
	size     int // leaves; a power of two
	cpu, mem []int64
}

const none = -1

func newFitTree(n int) *fitTree {
	t := &fitTree{}
	t.grow(n)
	return t
}

// grow makes room for n slots; new slots hold nothing.
func (t *fitTree) grow(n int) {
	if n <= t.size {
		return
	}
	size := max(t.size, 1)
	for size < n {
		size *= 2
	}
	cpu, mem := make([]int64, 2*size), make([]int64, 2*size)
	for i := range cpu {
		cpu[i], mem[i] = none, none
	}
	for i := 0; i < t.size; i++ {
		cpu[size+i], mem[size+i] = t.cpu[t.size+i], t.mem[t.size+i]
	}
	for i := size - 1; i >= 1; i-- {
		cpu[i], mem[i] = max(cpu[2*i], cpu[2*i+1]), max(mem[2*i], mem[2*i+1])
	}
	t.size, t.cpu, t.mem = size, cpu, mem
}

// set records slot i's free amount; a negative amount removes the slot from every search.
func (t *fitTree) set(i int, free vec) {
	if free.cpu < 0 || free.mem < 0 {
		free = vec{none, none}
	}
	j := t.size + i
	t.cpu[j], t.mem[j] = free.cpu, free.mem
	for j /= 2; j >= 1; j /= 2 {
		c, m := max(t.cpu[2*j], t.cpu[2*j+1]), max(t.mem[2*j], t.mem[2*j+1])
		if t.cpu[j] == c && t.mem[j] == m {
			return
		}
		t.cpu[j], t.mem[j] = c, m
	}
}

// next returns the first slot at or after from whose free amount covers need, or -1.
// need must not be negative.
func (t *fitTree) next(from int, need vec) int {
	if from >= t.size {
		return -1
	}
	return t.find(1, 0, t.size, from, need)
}

func (t *fitTree) find(j, lo, hi, from int, need vec) int {
	if hi <= from || t.cpu[j] < need.cpu || t.mem[j] < need.mem {
		return -1
	}
	if hi-lo == 1 {
		return lo
	}
	mid := (lo + hi) / 2
	if r := t.find(2*j, lo, mid, from, need); r >= 0 {
		return r
	}
	return t.find(2*j+1, mid, hi, from, need)
}
