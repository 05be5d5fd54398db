package market

import (
	"errors"
	"fmt"
	"testing"
)

// TestApplyBatchSameAsApply records the differential streams as Apply
// runs them (the generator reacts to the events) and replays them through
// ApplyBatch on a second engine in batches of uneven sizes: every command
// must give the same events and error, and the two engines the same
// state. The streams create, match, release and forget machines and
// orders inside a batch, so a group's warm-up often loads what an earlier
// command of the group then changed.
func TestApplyBatchSameAsApply(t *testing.T) {
	for s := 0; s < 2; s++ {
		t.Run(fmt.Sprint("seed", s), func(t *testing.T) {
			t.Parallel()
			g, per := newGen(uint64(300+s)), diffCommands/8
			if s == 1 {
				g, per = newWideGen(uint64(300+s)), diffCommands/20
			}
			one, err := NewEngine(g.cfg)
			if err != nil {
				t.Fatal(err)
			}
			cmds := make([]Command, per)
			evs := make([]string, per)
			errs := make([]error, per)
			for i := range cmds {
				cmds[i] = g.next()
				got, err := one.Apply(&cmds[i])
				evs[i], errs[i] = eventsString(got), err
				g.observe(got)
			}

			batched, err := NewEngine(g.cfg)
			if err != nil {
				t.Fatal(err)
			}
			applied := 0
			for size := 1; applied < per; size = size%97 + 13 {
				part := cmds[applied:min(applied+size, per)]
				base := applied
				n := batched.ApplyBatch(part, func(i int, got []Event, err error) bool {
					j := base + i
					if !errors.Is(err, errs[j]) || !errors.Is(errs[j], err) {
						t.Fatalf("cmd %d %+v: batched error %v, one by one %v", j, cmds[j], err, errs[j])
					}
					if gs := eventsString(got); gs != evs[j] {
						t.Fatalf("cmd %d %+v:\nbatched:\n%sone by one:\n%s", j, cmds[j], gs, evs[j])
					}
					return true
				})
				if n != len(part) {
					t.Fatalf("ApplyBatch applied %d of %d", n, len(part))
				}
				applied += n
			}
			if batched.StateDigest() != one.StateDigest() {
				t.Fatal("the engines differ after the same commands")
			}
			if err := checkInvariants(batched); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestApplyBatchStops checks that a false from fn stops the batch after
// that command: the rest are not applied.
func TestApplyBatchStops(t *testing.T) {
	g := newGen(7)
	e, err := NewEngine(g.cfg)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []Command
	for i := 0; i < 50; i++ {
		cmds = append(cmds, g.next())
	}
	seen := 0
	n := e.ApplyBatch(cmds, func(i int, _ []Event, _ error) bool {
		seen++
		return i < 20
	})
	if n != 21 || seen != 21 {
		t.Fatalf("applied %d, called %d times; want 21 and 21", n, seen)
	}
	ref, _ := NewEngine(g.cfg)
	for i := range cmds[:21] {
		_, _ = ref.Apply(&cmds[i])
	}
	if ref.StateDigest() != e.StateDigest() {
		t.Fatal("a stopped batch applied more (or less) than the commands up to the stop")
	}
}
