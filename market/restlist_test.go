package market

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRestListKeepsOrder: through 200 000 seeded inserts and removals
// (up to some 20 000 resting at once, so chunks split and empty out),
// the chunked list reads back exactly as a sorted slice of the same keys,
// with no empty chunk and none over twice the chunk size.
func TestRestListKeepsOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var l restList
	var ref []restKey
	seq := uint64(0)
	maxLen, splits := 0, 0
	for i := range 200_000 {
		if len(ref) == 0 || r.IntN(100) < 55 {
			seq++
			// Few prices, so many keys share one and seq decides.
			k := restKey{neg: -int64(r.IntN(50)), seq: seq, slot: uint32(seq)}
			l.insert(k)
			p, _ := slices.BinarySearchFunc(ref, k, func(a, b restKey) int {
				if restLess(a, b) {
					return -1
				}
				if restLess(b, a) {
					return 1
				}
				return 0
			})
			ref = slices.Insert(ref, p, k)
		} else {
			j := r.IntN(len(ref))
			l.remove(ref[j])
			ref = slices.Delete(ref, j, j+1)
		}
		maxLen = max(maxLen, len(ref))
		splits = max(splits, len(l.chunks))
		if i%1000 != 0 {
			continue
		}
		var got []restKey
		for _, c := range l.chunks {
			if len(c) == 0 || len(c) > 2*restChunk {
				t.Fatalf("op %d: a chunk of %d keys", i, len(c))
			}
			got = append(got, c...)
		}
		if !slices.Equal(got, ref) {
			t.Fatalf("op %d: the list reads back out of order (%d keys, want %d)", i, len(got), len(ref))
		}
	}
	if maxLen < 10*restChunk || splits < 10 {
		t.Fatalf("at most %d keys in %d chunks: the list never grew past a few chunks", maxLen, splits)
	}
	t.Logf("up to %d keys in %d chunks", maxLen, splits)
}
