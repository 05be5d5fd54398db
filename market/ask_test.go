package market

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// checkAsks verifies book.ask and its mirror against a scan of every book:
// an ask set too high would hide offers from orders, one too low would
// only cost reads, so both directions are checked.
func checkAsks(e *Engine) error {
	nb := len(e.books)
	for bi := range e.books {
		b := &e.books[bi]
		if len(b.top) != len(b.chunks) {
			return fmt.Errorf("book %d: %d chunk bounds for %d chunks", bi, len(b.top), len(b.chunks))
		}
		for ci, c := range b.chunks {
			for i := 0; i < c.n; i++ {
				if c.avail[i] > b.top[ci] {
					return fmt.Errorf("book %d chunk %d row %d: %d free GPUs above its chunk's bound %d", bi, ci, i, c.avail[i], b.top[ci])
				}
			}
		}
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

// TestAnyAtLeast checks the eight-at-a-time free-GPU test against a
// byte-by-byte one, for every k and counts of 0..MaxGPUs in every
// position.
func TestAnyAtLeast(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 20_000; n++ {
		var a [8]uint8
		for i := range a {
			a[i] = uint8(r.IntN(MaxGPUs + 1))
			if r.IntN(3) == 0 {
				a[i] = 0
			}
		}
		for k := uint8(1); k <= MaxGPUs; k++ {
			want := false
			for _, v := range a {
				want = want || v >= k
			}
			if got := anyAtLeast(a[:], k); got != want {
				t.Fatalf("%v, k %d: %v, want %v", a, k, got, want)
			}
		}
	}
}

// TestFullCheapEnd is the book the peer comparison builds: one-GPU
// machines whose cheapest are taken one after another, so full rows
// (kept in the book) make up its cheap end across several chunks, with
// cheaper listings and releases landing among them. Every command's
// events must equal the reference matcher's and the asks stay exact; the
// searches and ask repairs start past the full rows (book.seek,
// anyAtLeast), which this holds to the same answers.
func TestFullCheapEnd(t *testing.T) {
	cfg := Config{Models: []string{"h100"}, Regions: []string{"eu"}, HeartbeatIntervalMs: 10_000, MissedBeats: 3, ReservationTTLms: 1 << 40}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := newNaive(cfg)
	r := rand.New(rand.NewPCG(7, 9))
	var matched []string
	apply := func(c Command) {
		t.Helper()
		got, diff, _ := applyBoth(e, n, &c, &c)
		if diff != "" {
			t.Fatalf("%+v: %s", c, diff)
		}
		if err := checkAsks(e); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		for _, ev := range got {
			if ev.Kind == EvMatched {
				matched = append(matched, ev.Order)
			}
		}
	}
	list := func(i int, price int64) {
		apply(Command{Kind: KindUpsertMachine, Machine: fmt.Sprintf("m%05d", i), Provider: "p", Model: "h100", GPUs: 1 + int64(i%3/2),
			VRAMGiB: 80, Region: "eu", Price: price, ReliabilityBps: 9000, Verified: true, RTTms: []uint16{5}})
	}
	for i := 0; i < 250; i++ {
		list(i, 1_000+int64(r.IntN(5_000)))
	}
	for i := 0; i < 1_000; i++ {
		switch x := r.IntN(10); {
		case x < 6:
			apply(Command{Kind: KindPlaceOrder, Order: fmt.Sprintf("o%05d", i), Buyer: "b", Type: FillOrKill, Model: "h100",
				GPUs: 1 + int64(r.IntN(2)), VRAMGiB: 40, Region: "eu", Price: 6_000, MaxRTTms: 50, Hours: 1, LatencyFirst: x == 0})
		case x < 8 && len(matched) > 0:
			j := r.IntN(len(matched))
			apply(Command{Kind: KindReleaseLease, Order: matched[j]})
			matched[j] = matched[len(matched)-1]
			matched = matched[:len(matched)-1]
		default:
			list(250+i, 1_000+int64(r.IntN(5_000)))
		}
	}
	t.Logf("%+v", e.Stats())
	if st := e.Stats(); st.Machines-st.Listed < 128 {
		t.Fatalf("only %d of %d machines full: the book's cheap end is not full rows", st.Machines-st.Listed, st.Machines)
	}
}
