package market

import (
	"math/rand/v2"
	"strings"
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

// TestIDArena: copies compare equal only to their id, and freed cells are
// reused, so churn does not grow the arena.
func TestIDArena(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var a idArena
	live := map[uint32]string{}
	id := func() string {
		b := make([]byte, 1+r.IntN(MaxIDLen))
		for i := range b {
			b[i] = byte('a' + r.IntN(3))
		}
		return string(b)
	}
	for i := 0; i < 100_000; i++ {
		if len(live) < 300 && r.IntN(2) == 0 {
			s := id()
			loc := a.put(s)
			if loc == 0 {
				t.Fatal("location 0 handed out")
			}
			if _, dup := live[loc]; dup {
				t.Fatalf("location %d handed out twice", loc)
			}
			// A cell that fits a cache line lies within one.
			if g, off := idGranules(len(s)), int(loc&(idBlockGranules-1)); g <= lineGranules && off%lineGranules+g > lineGranules {
				t.Fatalf("a %d-granule cell at granule %d straddles a cache line", g, off)
			}
			live[loc] = s
		} else {
			for loc := range live {
				a.release(loc)
				delete(live, loc)
				break
			}
		}
		if i%101 == 0 {
			for loc, s := range live {
				if !a.equal(loc, s) || a.equal(loc, s+"x") || len(s) > 1 && a.equal(loc, s[1:]) {
					t.Fatalf("step %d: cell %d does not hold exactly %q", i, loc, s)
				}
			}
		}
	}
	// 300 live ids of at most 9 granules fit in one block; reuse keeps
	// the arena within a few.
	if len(a.blocks) > 3 {
		t.Fatalf("%d blocks for at most 300 live ids", len(a.blocks))
	}
}

// TestOrderIs checks an order's id comparison on both sides of the copy's
// length: ids that differ only past the copy, or only in length, are
// told apart.
func TestOrderIs(t *testing.T) {
	long := strings.Repeat("x", orderKeyLen)
	ids := []string{"", "a", "ab", "order-1", "018f3c2e-7b1a-7c3d-9e4f-0123456789ab",
		long[:orderKeyLen-1], long, long + "y", long + "z", long + "yy", strings.Repeat("y", MaxIDLen)}
	for _, a := range ids {
		var o order
		o.setID(a)
		for _, b := range ids {
			if got := o.is(b); got != (a == b) {
				t.Errorf("order %q is %q: %v", a, b, got)
			}
		}
	}
}
