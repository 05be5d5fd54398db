package market

import (
	"fmt"
	"testing"
)

// checkAsks verifies book.ask and its mirror against a scan of every book:
// an ask set too high would hide offers from orders, one too low would
// only cost reads, so both directions are checked.
func checkAsks(e *Engine) error {
	nb := len(e.books)
	for bi := range e.books {
		b := &e.books[bi]
		for k := 1; k <= askMaxK; k++ {
			want := int64(1<<63 - 1)
		scan:
			for _, c := range b.chunks {
				for i := 0; i < c.n; i++ {
					if int(c.avail[i]) >= k {
						want = c.price[i]
						break scan
					}
				}
			}
			if b.ask[k-1] != want || e.bookAsk[(k-1)*nb+bi] != want {
				return fmt.Errorf("book %d, %d GPUs: ask %d, mirrored %d, want %d", bi, k, b.ask[k-1], e.bookAsk[(k-1)*nb+bi], want)
			}
		}
	}
	return nil
}

// TestAskIndex checks the per-count cheapest asks after every command of
// random runs in both worlds (property_test.go checks the rest of the
// index).
func TestAskIndex(t *testing.T) {
	for seed := 0; seed < 4; seed++ {
		g := newGen(uint64(8000 + seed))
		if seed%2 == 1 {
			g = newWideGen(uint64(8000 + seed))
		}
		e, err := NewEngine(g.cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 25_000; i++ {
			c := g.next()
			evs, _ := e.Apply(&c)
			g.observe(evs)
			if err := checkAsks(e); err != nil {
				t.Fatalf("seed %d cmd %d %+v: %v", seed, i, c, err)
			}
		}
	}
}
