package market

import (
	"math/rand/v2"
	"testing"
)

// TestIDTable drives the open-addressing table with colliding hashes
// (wrapping around the end of the array too) against a Go map.
func TestIDTable(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var tb idTable
	ref := map[uint32]uint64{} // slot → hash
	for i := 0; i < 200_000; i++ {
		if r.IntN(2) == 0 && len(ref) < 400 {
			v := uint32(r.IntN(1 << 20))
			if _, ok := ref[v]; ok {
				continue
			}
			// Few distinct homes near the end of the array, so probe runs
			// collide and wrap.
			h := uint64(1020+r.IntN(8))&1023 | uint64(r.IntN(1<<20))<<10 | 1<<40
			tb.insert(h, v)
			ref[v] = h
		} else {
			for v, h := range ref {
				tb.delete(h, v)
				delete(ref, v)
				break
			}
		}
		if i%97 == 0 {
			if tb.n != len(ref) {
				t.Fatalf("n %d, want %d", tb.n, len(ref))
			}
			for v, h := range ref {
				found := false
				for j := h & tb.mask; tb.e[j].h != 0; j = (j + 1) & tb.mask {
					if tb.e[j].h == h && tb.e[j].v == v {
						found = true
						break
					}
				}
				if !found {
					t.Fatalf("step %d: slot %d lost", i, v)
				}
			}
		}
	}
}
