package market

import (
	"fmt"
	"math/rand/v2"
)

// testConfig is the small world of the randomized tests: few machines,
// models, regions, prices and RTTs, so that ties, contention, expiries and
// offline machines happen all the time.
func testConfig() Config {
	return Config{
		Models:              []string{"A100", "H100", "L4"},
		Regions:             []string{"eu", "us", "ap", "sa"},
		HeartbeatIntervalMs: 1000,
		MissedBeats:         3,
		ReservationTTLms:    4000,
	}
}

// gen produces a random but reproducible command stream over testConfig:
// offers appearing, changing and vanishing, heartbeats (with RTT changes,
// busy GPUs, unhealthy reports), ticks, suspensions, orders of every type
// (price- and latency-first, any model), cancels (some by the wrong
// buyer), confirmations, releases, and a share of invalid input.
type gen struct {
	r      *rand.Rand
	cfg    Config
	now    int64
	gpus   map[string]int64
	orderN int
	recent []string
	buyer  map[string]string
	// held: orders the engine reported matched and not yet released, fed
	// back by observe, so releases and confirmations hit live reservations
	// and leases (otherwise leases pile up and the market starves).
	held []string
	// machines is how many machine ids the stream uses; models, which
	// models it lists and orders.
	machines int
	models   []string
	// homes are the regions machines are listed in.
	homes []string
	// style spells machine and order ids (idStyle), one of the three
	// shapes the engine keys differently: short ids, canonical UUIDs, and
	// ids longer than 16 bytes (idKey).
	style int
}

// id spells id number n of a kind ('m' machine, 'o' order) in the
// stream's style. Every style keeps the numbers' order, so tie-breaks by
// id are the same in each.
func (g *gen) id(kind byte, n int) string {
	switch g.style {
	case 1:
		return fmt.Sprintf("%08x-0000-7000-8000-%012x", 0x01900000+int(kind), n)
	case 2:
		return fmt.Sprintf("%c%06d.rack-7.example-provider", kind, n)
	}
	if kind == 'm' {
		return fmt.Sprintf("m%03d", n)
	}
	return fmt.Sprintf("o%06d", n)
}

// observe feeds the engine's events back into the generator.
func (g *gen) observe(evs []Event) {
	for _, e := range evs {
		switch e.Kind {
		case EvMatched:
			g.held = append(g.held, e.Order)
		case EvLeaseReleased, EvReservationExpired, EvOrderCancelled, EvPreempted:
			for i, id := range g.held {
				if id == e.Order {
					g.held = append(g.held[:i], g.held[i+1:]...)
					break
				}
			}
		}
	}
}

func (g *gen) heldOrder() string {
	if len(g.held) == 0 || g.r.IntN(5) == 0 {
		return g.recentOrder()
	}
	return g.held[g.r.IntN(len(g.held))]
}

func newGen(seed uint64) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), cfg: testConfig(), gpus: map[string]int64{}, buyer: map[string]string{},
		machines: 20, models: []string{"A100", "H100", "L4"}, homes: []string{"eu", "us", "ap", "sa"}, style: int(seed % 3)}
}

// newWideGen is a stream whose books hold hundreds of offers (one model,
// 400 machines, a long heartbeat window), so chunks split, empty and
// shift, and the book-selection pruning has real work to do.
func newWideGen(seed uint64) *gen {
	g := newGen(seed)
	g.machines, g.models, g.homes = 400, []string{"H100"}, []string{"eu", "eu", "eu", "us"}
	g.cfg.MissedBeats = 1000
	return g
}

func (g *gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g *gen) rtts() []uint16 {
	out := make([]uint16, len(g.cfg.Regions))
	for i := range out {
		out[i] = uint16(1 + 5*g.r.IntN(8))
	}
	return out
}

func (g *gen) machineID() string { return g.id('m', g.r.IntN(g.machines)) }

func (g *gen) recentOrder() string {
	if len(g.recent) == 0 || g.r.IntN(20) == 0 {
		return "o-missing"
	}
	return g.recent[len(g.recent)-1-g.r.IntN(min(len(g.recent), 48))]
}

func (g *gen) next() Command {
	g.now += int64(g.r.IntN(60))
	c := Command{Now: g.now}
	if g.r.IntN(500) == 0 {
		c.Now = g.now - 1 - int64(g.r.IntN(50)) // time going backwards
	}
	switch x := g.r.IntN(100); {
	case x < 12:
		c.Kind = KindUpsertMachine
		c.Machine = g.machineID()
		c.Provider = fmt.Sprintf("p%d", c.Machine[3]%5)
		if g.r.IntN(50) == 0 {
			c.Provider = "p-other"
		}
		c.Model = g.pick(g.models...)
		c.GPUs = int64(1 + g.r.IntN(8))
		c.VRAMGiB = int64(g.pick("24", "40", "80")[0]-'0') * 10
		c.Region = g.pick(g.homes...)
		c.Price = int64(100 + 10*g.r.IntN(5))
		c.ReliabilityBps = int64(9000 + 500*g.r.IntN(3))
		c.Verified = g.r.IntN(10) != 0
		c.RTTms = g.rtts()
		if g.r.IntN(3) == 0 { // interruptible GPUs too
			c.SpotFloor = c.Price - int64(10*g.r.IntN(4))
			c.NoticeMs = MinNoticeMs + int64(g.r.IntN(3))*1000
		}
		switch g.r.IntN(40) {
		case 5:
			c.SpotFloor = c.Price + 1
			c.NoticeMs = MinNoticeMs
		case 6:
			c.SpotFloor, c.NoticeMs = 0, MinNoticeMs
		case 7:
			c.SpotFloor, c.NoticeMs = c.Price, MaxNoticeMs+1
		case 0:
			c.Model = "Z9"
		case 1:
			c.GPUs = 0
		case 2:
			c.Price = -5
		case 3:
			c.RTTms = c.RTTms[:2]
		case 4:
			c.Region = "mars"
		}
		g.gpus[c.Machine] = c.GPUs
	case x < 15:
		c.Kind = KindRemoveMachine
		c.Machine = g.machineID()
	case x < 42:
		c.Kind = KindHeartbeat
		c.Machine = g.machineID()
		all := nAll(g.gpus[c.Machine])
		c.Free = all
		if g.r.IntN(4) == 0 {
			c.Free = all & g.r.Uint64()
		}
		if g.r.IntN(60) == 0 {
			c.Free = 1 << 63 // more GPUs than the machine has
		}
		c.Healthy = g.r.IntN(25) != 0
		if g.r.IntN(3) == 0 {
			c.RTTms = g.rtts()
		}
	case x < 56:
		c.Kind = KindTick
	case x < 58:
		c.Kind = KindSuspendProvider
		c.Provider = fmt.Sprintf("p%d", g.r.IntN(6))
	case x < 61:
		c.Kind = KindReinstateProvider
		c.Provider = fmt.Sprintf("p%d", g.r.IntN(6))
	case x < 86:
		c.Kind = KindPlaceOrder
		g.orderN++
		c.Order = g.id('o', g.orderN)
		if g.r.IntN(100) == 0 && len(g.recent) > 0 {
			c.Order = g.recentOrder() // maybe a duplicate
		}
		c.Buyer = fmt.Sprintf("b%d", g.r.IntN(6))
		c.Type = OrderType(1 + g.r.IntN(3))
		if c.Type == RentNow {
			c.Machine = g.machineID()
		}
		if g.r.IntN(7) != 0 {
			c.Model = g.pick(g.models...)
		}
		c.GPUs = int64(1 + g.r.IntN(4))
		c.VRAMGiB = int64(g.pick("0", "24", "40", "80")[0]-'0') * 10
		c.Region = g.pick("eu", "us", "ap", "sa")
		c.Price = int64(95 + 5*g.r.IntN(12))
		c.MaxRTTms = int64(5 + 5*g.r.IntN(8))
		c.Hours = int64(1 + g.r.IntN(5))
		if c.Type == GoodTilCancelled {
			c.ExpiresAt = g.now + 1 + int64(g.r.IntN(4000))
		}
		c.LatencyFirst = g.r.IntN(4) == 0
		c.Interruptible = g.r.IntN(3) == 0
		if c.Interruptible {
			c.Price -= 10 // bids sit around the floors
		}
		switch g.r.IntN(40) {
		case 0:
			c.GPUs = -1
		case 1:
			c.Hours = 0
		case 2:
			c.MaxRTTms = MaxRTTms + 1
		case 3:
			c.Model = "Z9"
		case 4:
			c.Region = "mars"
		case 5:
			c.Price = 1 << 62 // overflows with hours × GPUs
			c.Hours = 1000
		case 6:
			c.ExpiresAt = 0
		}
		g.recent = append(g.recent, c.Order)
		if len(g.recent) > 256 {
			g.recent = g.recent[128:]
		}
		if _, ok := g.buyer[c.Order]; !ok {
			g.buyer[c.Order] = c.Buyer
		}
	case x < 92:
		c.Kind = KindCancelOrder
		c.Order = g.recentOrder()
		c.Buyer = g.buyer[c.Order]
		if c.Buyer == "" || g.r.IntN(8) == 0 {
			c.Buyer = "b-stranger"
		}
	case x < 95:
		c.Kind = KindConfirmLease
		c.Order = g.heldOrder()
	default:
		c.Kind = KindReleaseLease
		c.Order = g.heldOrder()
	}
	if c.Now > g.now {
		g.now = c.Now
	}
	return c
}
