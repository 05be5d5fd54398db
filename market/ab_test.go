//go:build abtest

package market

import (
	"runtime"
	"testing"
	"time"

	"github.com/highway-compute/highway/hugeheap"
	old "github.com/highway-compute/highway/market/abold"
)

// BenchmarkAB is scripts/ab-market.sh's comparison: this tree's engine
// and market/abold's (the package at another revision) each build the
// million-offer world and apply the same 2 000 000 commands of
// BenchmarkMarket's mix through ApplyBatch, in batches of 10 000
// alternated between them (which goes first alternates too), so both
// see the host at the same minutes. It fails if the two engines match
// differently; the ratio is what it reports.
func BenchmarkAB(b *testing.B) {
	hugeheap.Prepare(3 << 30) // both worlds' heaps on 2 MiB pages
	for range b.N {
		wn, wo := newBenchWorld(), newBenchWorld()
		en, err := NewEngine(wn.cfg)
		if err != nil {
			b.Fatal(err)
		}
		cfg := wn.cfg
		eo, err := old.NewEngine(old.Config{Models: cfg.Models, Regions: cfg.Regions,
			HeartbeatIntervalMs: cfg.HeartbeatIntervalMs, MissedBeats: cfg.MissedBeats, ReservationTTLms: cfg.ReservationTTLms})
		if err != nil {
			b.Fatal(err)
		}
		// Commands reach the old engine through the log encoding, the one
		// form both packages share.
		toOld := func(c *Command) old.Command {
			oc, err := old.UnmarshalCommand(MarshalCommand(nil, c))
			if err != nil {
				b.Fatal(err)
			}
			return oc
		}
		var c Command
		for i := range benchMachines {
			wn.machineCmd(&c, i)
			if _, err := en.Apply(&c); err != nil {
				b.Fatal(err)
			}
			wo.machineCmd(&c, i)
			oc := toOld(&c)
			if _, err := eo.Apply(&oc); err != nil {
				b.Fatal(err)
			}
		}
		wn.next, wo.next = benchMachines, benchMachines
		runtime.GC()

		const batch = 10_000
		cn := make([]Command, batch)
		co := make([]old.Command, batch)
		var tn, to time.Duration
		mn, mo := 0, 0
		runNew := func() {
			t0 := time.Now()
			en.ApplyBatch(cn, func(_ int, evs []Event, _ error) bool {
				for _, e := range evs {
					if e.Kind == EvMatched {
						mn++
						wn.recent = append(wn.recent, e.Order)
					}
				}
				return true
			})
			tn += time.Since(t0)
		}
		runOld := func() {
			t0 := time.Now()
			eo.ApplyBatch(co, func(_ int, evs []old.Event, _ error) bool {
				for _, e := range evs {
					if e.Kind == old.EvMatched {
						mo++
						wo.recent = append(wo.recent, e.Order)
					}
				}
				return true
			})
			to += time.Since(t0)
		}
		for done := 0; done < 2*benchOps; done += batch {
			for i := range cn {
				wn.nextOp(&cn[i], done+i)
				wo.nextOp(&c, done+i)
				co[i] = toOld(&c)
			}
			if (done/batch)%2 == 0 {
				runNew()
				runOld()
			} else {
				runOld()
				runNew()
			}
			if mn != mo {
				b.Fatalf("after %d commands the engines have matched %d and %d orders", done+batch, mn, mo)
			}
		}
		b.ReportMetric(float64(2*benchOps)/tn.Seconds(), "new_ops/s")
		b.ReportMetric(float64(2*benchOps)/to.Seconds(), "old_ops/s")
		b.ReportMetric(to.Seconds()/tn.Seconds(), "new/old")
	}
}
