package market

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"testing"
)

// checkSpot verifies the interruptible side after every command:
//   - a machine's spot mask is exactly the union of its confirmed
//     interruptible leases (so only those are ever preempted), within its
//     held GPUs, and its spots list names exactly those leases;
//   - spotMachines lists exactly the machines with a floor, by slot;
//   - spotRest lists exactly the resting bids, in priority order;
//   - no resting bid could take any machine (the spot sweep's invariant).
func checkSpot(e *Engine, machines, orders map[string]uint32) error {
	spot := map[uint32]uint64{}
	leases := map[uint32][]uint32{}
	var rest []uint32
	for _, s := range orders {
		o := e.ord(s)
		switch {
		case o.spot && o.state == stLeased:
			spot[o.machine] |= o.mask
			leases[o.machine] = append(leases[o.machine], s)
		case o.spot && o.state == stResting:
			rest = append(rest, s)
		}
	}
	var floors []uint32
	for id, s := range machines {
		m := e.mach(s)
		if m.spot != spot[s] || m.spot&^m.held != 0 {
			return fmt.Errorf("machine %s: spot %#x, its interruptible leases hold %#x (held %#x)", id, m.spot, spot[s], m.held)
		}
		got := slices.Sorted(slices.Values(m.spots))
		want := slices.Sorted(slices.Values(leases[s]))
		if !slices.Equal(got, want) {
			return fmt.Errorf("machine %s: spots %v, want %v", id, got, want)
		}
		if m.spotFloor > 0 {
			floors = append(floors, s)
		}
	}
	slices.Sort(floors)
	if !slices.Equal(floors, e.spotMachines) {
		return fmt.Errorf("spotMachines %v, want %v", e.spotMachines, floors)
	}
	slices.SortFunc(rest, e.spotLess)
	if !slices.Equal(rest, e.spotRest) {
		return fmt.Errorf("spotRest %v, want %v", e.spotRest, rest)
	}
	for _, s := range rest {
		if ms, ok := e.bestSpot(e.ord(s)); ok {
			return fmt.Errorf("resting bid %s could take machine %s", e.ord(s).id, e.mach(ms).id)
		}
	}
	return nil
}

// TestPreemptionProperties runs random streams and checks, per event,
// what a buyer of either kind is promised:
//   - only a confirmed interruptible lease is ever preempted: never an
//     on-demand order, and never a reservation;
//   - a bid preempts only leases paying less than it will pay;
//   - the preempting order's GPUs are its own only from the notice's end
//     (its At is the preempted lease's At), and the preempted lease is
//     gone from the engine, so no further epoch of it can be asked for;
//   - the notice is the machine's, within 10 s to 5 min.
func TestPreemptionProperties(t *testing.T) {
	preempted := 0
	for seed := range uint64(4) {
		g := newGen(3100 + seed)
		e, err := NewEngine(g.cfg)
		if err != nil {
			t.Fatal(err)
		}
		spot := map[string]bool{}
		leased := map[string]bool{}
		price := map[string]int64{}
		for i := 0; i < 60_000; i++ {
			c := g.next()
			evs, err := e.Apply(&c)
			g.observe(evs)
			if err == nil && c.Kind == KindPlaceOrder {
				spot[c.Order] = c.Interruptible
			}
			by := map[string]int64{}
			for _, ev := range evs {
				switch ev.Kind {
				case EvMatched:
					price[ev.Order] = ev.Price
					if at, ok := by[ev.Order]; ok && ev.At != at {
						t.Fatalf("seed %d cmd %d: %s starts at %d, its victims stop at %d", seed, i, ev.Order, ev.At, at)
					}
					if _, ok := by[ev.Order]; !ok && ev.At != 0 {
						t.Fatalf("seed %d cmd %d: %s waits until %d with nobody preempted", seed, i, ev.Order, ev.At)
					}
				case EvLeaseConfirmed:
					leased[ev.Order] = true
				case EvPreempted:
					preempted++
					switch {
					case !spot[ev.Order]:
						t.Fatalf("seed %d cmd %d: on-demand order %s preempted", seed, i, ev.Order)
					case !leased[ev.Order]:
						t.Fatalf("seed %d cmd %d: reservation %s preempted", seed, i, ev.Order)
					case ev.At-c.Now < MinNoticeMs || ev.At-c.Now > MaxNoticeMs:
						t.Fatalf("seed %d cmd %d: notice %d ms", seed, i, ev.At-c.Now)
					}
					if _, live := e.orderSlot(ev.Order); live {
						t.Fatalf("seed %d cmd %d: preempted %s still in the engine", seed, i, ev.Order)
					}
					by[ev.By] = ev.At
					if spot[ev.By] && price[ev.Order] >= bidPrice(evs, ev.By) {
						t.Fatalf("seed %d cmd %d: bid %s preempted %s, which pays as much", seed, i, ev.By, ev.Order)
					}
				}
			}
			if err := checkInvariants(e); err != nil {
				t.Fatalf("seed %d cmd %d %+v: %v", seed, i, c, err)
			}
		}
	}
	if preempted < 50 {
		t.Fatalf("only %d preemptions: the generator does not exercise them", preempted)
	}
	t.Logf("%d preemptions checked", preempted)
}

// bidPrice is what order id pays, from its match among evs.
func bidPrice(evs []Event, id string) int64 {
	for _, ev := range evs {
		if ev.Kind == EvMatched && ev.Order == id {
			return ev.Price
		}
	}
	return 0
}

// TestPreemptionScenario walks the main path by hand: a bid takes idle
// GPUs at its bid, a higher bid outbids it, an on-demand order preempts
// the cheapest interruptible lease first and waits out the notice, and a
// bid below a named offer's floor is refused without a change.
func TestPreemptionScenario(t *testing.T) {
	e, _ := NewEngine(Config{Models: []string{"H100"}, Regions: []string{"eu"}, HeartbeatIntervalMs: 1000, MissedBeats: 1000, ReservationTTLms: 5000})
	apply := func(c Command) []Event {
		t.Helper()
		evs, err := e.Apply(&c)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		return slices.Clone(evs)
	}
	apply(Command{Kind: KindUpsertMachine, Now: 1, Machine: "m1", Provider: "p", Model: "H100", GPUs: 2, VRAMGiB: 80, Region: "eu",
		Price: 200, Verified: true, RTTms: []uint16{5}, SpotFloor: 100, NoticeMs: 30_000})
	bid := func(now int64, id string, price, gpus int64) []Event {
		return apply(Command{Kind: KindPlaceOrder, Now: now, Order: id, Buyer: "b-" + id, Type: GoodTilCancelled, Model: "H100", GPUs: gpus,
			Region: "eu", Price: price, MaxRTTms: 100, Hours: 1, ExpiresAt: 1 << 40, Interruptible: true})
	}
	want := func(evs []Event, lines ...string) {
		t.Helper()
		if got := eventsString(evs); got != joinLines(lines) {
			t.Fatalf("events:\n%swant:\n%s", got, joinLines(lines))
		}
	}
	below := Command{Kind: KindPlaceOrder, Now: 2, Order: "low", Buyer: "b", Type: RentNow, Machine: "m1", GPUs: 1, Region: "eu",
		Price: 99, MaxRTTms: 100, Hours: 1, Interruptible: true}
	d := e.StateDigest()
	if _, err := e.Apply(&below); !errors.Is(err, ErrBelowFloor) || e.StateDigest() != d {
		t.Fatalf("bid below the floor: %v", err)
	}
	want(bid(3, "s1", 120, 1), "matched order=s1 machine=m1 provider=p gpus=0x1 count=1 price=120 total=120 rtt=5 expiry=5003 spot=1")
	want(bid(4, "s2", 150, 1), "matched order=s2 machine=m1 provider=p gpus=0x2 count=1 price=150 total=150 rtt=5 expiry=5004 spot=1")
	apply(Command{Kind: KindConfirmLease, Now: 5, Order: "s1"})
	apply(Command{Kind: KindConfirmLease, Now: 6, Order: "s2"})
	// Outbid: 180 > 120 takes s1's GPU (the cheaper lease), not s2's.
	want(bid(7, "s3", 180, 1),
		"preempted order=s1 machine=m1 gpus=0x1 count=1 at=30007 by=s3",
		"matched order=s3 machine=m1 provider=p gpus=0x1 count=1 price=180 total=180 rtt=5 expiry=35007 at=30007 spot=1")
	// A bid at 150 cannot outbid s2 (150) and rests.
	want(bid(8, "s4", 150, 1), "rested order=s4")
	apply(Command{Kind: KindConfirmLease, Now: 9, Order: "s3"})
	// On demand preempts the lowest-paying lease first: s2 (150) before s3 (180).
	evs := apply(Command{Kind: KindPlaceOrder, Now: 10, Order: "od", Buyer: "b", Type: FillOrKill, Model: "H100", GPUs: 1, Region: "eu",
		Price: 200, MaxRTTms: 100, Hours: 1})
	want(evs,
		"preempted order=s2 machine=m1 gpus=0x2 count=1 at=30010 by=od",
		"matched order=od machine=m1 provider=p gpus=0x2 count=1 price=200 total=200 rtt=5 expiry=35010 at=30010")
	// The on-demand lease is never preempted, whatever the bid.
	apply(Command{Kind: KindConfirmLease, Now: 11, Order: "od"})
	want(bid(12, "s5", 200, 2), "rested order=s5")
	if n := bits.OnesCount64(e.mach(0).spot); n != 1 {
		t.Fatalf("%d GPUs interruptible, want 1 (s3)", n)
	}
}

func joinLines(lines []string) string {
	out := ""
	for _, l := range lines {
		out += l + "\n"
	}
	return out
}
