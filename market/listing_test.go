package market

import (
	"slices"
	"testing"
)

// TestListingMatchesReference: through a long random stream, every 50
// commands, each machine's Listing agrees field by field with the naive
// reference engine's machine (and machines the reference does not hold
// are not listed); and re-upserting a live machine's Listing.Upsert
// changes nothing (same state digest), so a view that adopts it and
// relists unchanged writes nothing to the log.
func TestListingMatchesReference(t *testing.T) {
	g := newGen(31)
	e, err := NewEngine(g.cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := newNaive(g.cfg)
	compared, relisted := 0, 0
	for i := range 20_000 {
		c := g.next()
		evs, _ := e.Apply(&c)
		nc := c
		_, _ = n.Apply(&nc)
		g.observe(evs)
		if i%50 != 0 {
			continue
		}
		for m := range g.machines {
			id := g.id('m', m)
			l, ok := e.Listing(id)
			want, held := n.machines[id]
			if ok != held {
				t.Fatalf("cmd %d: machine %s listed %v, reference holds it %v", i, id, ok, held)
			}
			if !ok {
				continue
			}
			u := l.Upsert
			if u.Kind != KindUpsertMachine || u.Machine != id || u.Provider != want.provider || u.Model != want.model ||
				u.GPUs != want.gpus || u.VRAMGiB != want.vram || u.Region != want.region || u.Price != want.price ||
				u.ReliabilityBps != want.rel || u.Verified != want.verified || !slices.Equal(u.RTTms, want.rtt[:len(g.cfg.Regions)]) ||
				l.Free != want.free || l.Held != want.held || l.Online != want.online || l.Healthy != want.healthy ||
				l.Delisted != want.delisted || l.Suspended != n.suspended[want.provider] {
				t.Fatalf("cmd %d: machine %s: engine %+v, reference %+v (suspended %v)", i, id, l, *want, n.suspended[want.provider])
			}
			compared++
		}
		if i%1000 == 0 {
			r, err := Restore(g.cfg, e.Snapshot(nil))
			if err != nil {
				t.Fatal(err)
			}
			before := r.StateDigest()
			for m := range g.machines {
				l, ok := r.Listing(g.id('m', m))
				if !ok || l.Delisted {
					continue
				}
				u := l.Upsert
				u.Now = r.Now()
				if _, err := r.Apply(&u); err != nil {
					t.Fatalf("cmd %d: relisting %s: %v", i, u.Machine, err)
				}
				relisted++
			}
			if r.StateDigest() != before {
				t.Fatalf("cmd %d: relisting the engine's own listings changed its state", i)
			}
		}
	}
	if compared == 0 || relisted == 0 {
		t.Fatalf("compared %d listings and relisted %d: the stream listed nothing", compared, relisted)
	}
	t.Logf("%d listings compared, %d relisted unchanged", compared, relisted)
}
