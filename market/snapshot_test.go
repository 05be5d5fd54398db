package market

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// follower is an engine restored from a snapshot, fed the commands that
// follow it beside the original.
type follower struct {
	e     *Engine
	from  int
	until int
}

// TestSnapshotRestoresExactly: at checkpoints through long random streams
// (the small contended world and the wide one whose books split chunks),
// the engine is snapshotted and restored; the restored engine has the
// same state digest, passes the invariants, snapshots to the same bytes,
// and then answers each of the next 3 000 commands with exactly the
// original's events and errors (so slots, free lists, books and deadlines
// all came back as they decide).
func TestSnapshotRestoresExactly(t *testing.T) {
	for _, tc := range []struct {
		name string
		gen  *gen
		n    int
	}{
		{"contended", newGen(21), 40_000},
		{"wide", newWideGen(22), 40_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.gen
			e, err := NewEngine(g.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var followers []*follower
			restored := 0
			for i := 0; i < tc.n; i++ {
				if i%997 == 0 {
					snap := e.Snapshot(nil)
					r, err := Restore(g.cfg, snap)
					if err != nil {
						t.Fatalf("cmd %d: restore: %v", i, err)
					}
					if r.StateDigest() != e.StateDigest() {
						t.Fatalf("cmd %d: restored state differs", i)
					}
					if err := checkInvariants(r); err != nil {
						t.Fatalf("cmd %d: restored engine: %v", i, err)
					}
					if again := r.Snapshot(nil); string(again) != string(snap) {
						t.Fatalf("cmd %d: the restored engine snapshots differently", i)
					}
					followers = append(followers, &follower{e: r, from: i, until: i + 3000})
					restored++
				}
				c := g.next()
				evs, err := e.Apply(&c)
				want := fmt.Sprint(eventsString(evs), err)
				g.observe(evs)
				live := followers[:0]
				for _, f := range followers {
					fc := c
					fevs, ferr := f.e.Apply(&fc)
					if got := fmt.Sprint(eventsString(fevs), ferr); got != want {
						t.Fatalf("cmd %d (%d after the snapshot): restored engine gave\n%s\nwant\n%s", i, i-f.from, got, want)
					}
					if i+1 < f.until {
						live = append(live, f)
					} else if f.e.StateDigest() != e.StateDigest() {
						t.Fatalf("cmd %d: restored engine drifted", i)
					}
				}
				followers = live
			}
			st := e.Stats()
			if st.Listed == 0 || st.Leases+st.Reservations == 0 || st.Resting == 0 {
				t.Logf("final market: %+v", st)
			}
			t.Logf("%d snapshots restored and followed; final market %+v", restored, st)
		})
	}
}

// busyEngine is an engine some thousands of commands into the contended
// stream.
func busyEngine(t *testing.T) (*Engine, Config) {
	t.Helper()
	g := newGen(23)
	e, _ := NewEngine(g.cfg)
	for range 5000 {
		c := g.next()
		evs, _ := e.Apply(&c)
		g.observe(evs)
	}
	return e, g.cfg
}

// TestSnapshotRefusesDamage: every truncation of a snapshot is refused
// with ErrBadSnapshot, and no corruption (random bytes overwritten, seeded)
// makes Restore panic: it refuses or returns an engine whose GPU holds
// are consistent.
func TestSnapshotRefusesDamage(t *testing.T) {
	e, cfg := busyEngine(t)
	snap := e.Snapshot(nil)
	for n := 0; n < len(snap); n++ {
		if _, err := Restore(cfg, snap[:n]); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("truncated to %d of %d bytes: err = %v", n, len(snap), err)
		}
	}
	if _, err := Restore(cfg, append(snap[:len(snap):len(snap)], 0)); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("trailing byte: err = %v", err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	refused := 0
	for range 3000 {
		bad := append([]byte(nil), snap...)
		for range 1 + r.IntN(3) {
			bad[r.IntN(len(bad))] = byte(r.IntN(256))
		}
		got, err := Restore(cfg, bad)
		if err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("corrupted snapshot: err = %v, want ErrBadSnapshot", err)
			}
			refused++
			continue
		}
		for s := range uint32(got.nOrders) {
			if o := got.ord(s); o.alive && o.state != stResting && o.mask&^got.mach(o.machine).held != 0 {
				t.Fatalf("restored a corrupted snapshot with order %s holding GPUs its machine does not", o.id)
			}
		}
	}
	t.Logf("%d of 3000 corrupted snapshots refused (the rest changed a value, not the structure)", refused)
}

// TestSnapshotCatalog: a catalog that gained a model restores (models are
// stored by name); one whose regions changed, or that lost a model a live
// offer uses, is refused, as a log replay would refuse it.
func TestSnapshotCatalog(t *testing.T) {
	e, cfg := busyEngine(t)
	snap := e.Snapshot(nil)
	grown := cfg
	grown.Models = append([]string{"B200"}, cfg.Models...)
	r, err := Restore(grown, snap)
	if err != nil {
		t.Fatalf("catalog with a new model: %v", err)
	}
	if r.Stats() != e.Stats() {
		t.Fatalf("stats after restore under a grown catalog: %+v, want %+v", r.Stats(), e.Stats())
	}
	regions := cfg
	regions.Regions = []string{"eu", "us", "ap", "af"}
	if _, err := Restore(regions, snap); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("changed regions: err = %v", err)
	}
	shrunk := cfg
	shrunk.Models = []string{"A100", "L4"}
	if _, err := Restore(shrunk, snap); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("catalog without H100: err = %v", err)
	}
}
