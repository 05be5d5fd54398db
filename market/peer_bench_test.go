package market

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/i25959341/orderbook"
	"github.com/shopspring/decimal"
)

// The engine beside a peer: github.com/i25959341/orderbook v0.2.5, a
// maintained open-source Go limit-order book (price-time priority, decimal
// prices), on the flow both can express: one model, one region, unit
// quantities, price-only limit orders and cancels. An ask is a one-GPU
// machine listed at its price; a bid is a good-til-cancelled order for one
// GPU at its max price. Every price is distinct, so which order fills
// which is decided by price alone and both books must make exactly the
// same fills: the benchmark checks every one (the counterparty of each
// fill, and every cancel's outcome) before it reports a rate.

const (
	peerDepth = 100_000 // asks resting before the timed flow
	peerOps   = 300_000 // asks, bids and cancels, timed
)

type peerOp struct {
	kind  uint8 // peerAsk, peerBid, peerCancel
	id    string
	price int64
	// fill is the counterparty the op fills against ("": none); for a
	// cancel, whether the order was still resting.
	fill   string
	cancel bool
}

const (
	peerAsk uint8 = iota
	peerBid
	peerCancel
)

// peerFlow draws the flow and its expected outcome from a reference run
// of the peer (not timed): asks and bids around one price, bids a little
// below the asks on average so about half rest, and cancels of bids that
// rest at that point.
func peerFlow() []peerOp {
	r := rand.New(rand.NewPCG(5, 8))
	ref := orderbook.NewOrderBook()
	var ops []peerOp
	var resting []string
	for i := range peerDepth + peerOps {
		// The sequence number in the low 20 bits makes every price unique.
		price := func(base int64) int64 { return (base+r.Int64N(400))<<20 | int64(i) }
		op := peerOp{kind: peerAsk, id: fmt.Sprintf("a%07d", i), price: price(1_000)}
		if i >= peerDepth {
			switch k := r.IntN(10); {
			case k < 4:
			case k < 8:
				op = peerOp{kind: peerBid, id: fmt.Sprintf("b%07d", i), price: price(780)}
			default:
				if len(resting) == 0 {
					break
				}
				j := r.IntN(len(resting))
				op = peerOp{kind: peerCancel, id: resting[j]}
				resting[j] = resting[len(resting)-1]
				resting = resting[:len(resting)-1]
			}
		}
		switch op.kind {
		case peerCancel:
			op.cancel = ref.CancelOrder(op.id) != nil
		default:
			side := orderbook.Sell
			if op.kind == peerBid {
				side = orderbook.Buy
			}
			done, _, _, err := ref.ProcessLimitOrder(side, op.id, decimal.New(1, 0), decimal.New(op.price, 0))
			if err != nil {
				panic(err)
			}
			switch {
			case len(done) > 0 && op.kind == peerAsk:
				// The bid it filled rests no more. (A cancel of a filled
				// bid is not the same op in both: the engine's fill is a
				// reservation, which a cancel releases.)
				op.fill = done[0].ID()
				if j := slices.Index(resting, op.fill); j >= 0 {
					resting[j] = resting[len(resting)-1]
					resting = resting[:len(resting)-1]
				}
			case len(done) > 0:
				op.fill = done[0].ID()
			case op.kind == peerBid:
				resting = append(resting, op.id)
			}
		}
		ops = append(ops, op)
	}
	return ops
}

func BenchmarkMarketVsPeer(b *testing.B) {
	ops := peerFlow()
	fills := 0
	for _, op := range ops[peerDepth:] {
		if op.fill != "" {
			fills++
		}
	}
	// Both sides run on the heap BenchmarkMarket runs on, and the same
	// whether or not it ran first in this process.
	heap := benchHeap()
	b.Logf("transparent huge pages: %s, %d MiB of heap advised %s", heap.Mode, heap.Advised>>20, heap.Why)
	for range b.N {
		// Each side starts its clock with the garbage of what ran before
		// collected, and its state is dropped when it returns, so neither
		// pays for the other's heap.
		runtime.GC()
		peerTook := timePeer(b, ops)
		runtime.GC()
		engineTook := timeEngine(b, ops)
		peerRate := float64(peerOps) / peerTook.Seconds()
		engineRate := float64(peerOps) / engineTook.Seconds()
		b.ReportMetric(peerRate, "BENCH:market_peer_ops_per_s:ops/s")
		b.ReportMetric(engineRate, "BENCH:market_single_book_ops_per_s:ops/s")
		b.ReportMetric(engineRate/peerRate, "BENCH:market_vs_peer_ratio:x")
		b.ReportMetric(float64(fills), "BENCH:market_vs_peer_fills:fills")
	}
}

// timePeer runs the flow on the peer and times its part after the depth;
// then it checks the outcomes on a fresh run (checking inside would time
// the checks).
func timePeer(b *testing.B, ops []peerOp) time.Duration {
	var ob *orderbook.OrderBook
	run := func(op *peerOp) (string, bool) {
		if op.kind == peerCancel {
			return "", ob.CancelOrder(op.id) != nil
		}
		side := orderbook.Sell
		if op.kind == peerBid {
			side = orderbook.Buy
		}
		done, _, _, err := ob.ProcessLimitOrder(side, op.id, decimal.New(1, 0), decimal.New(op.price, 0))
		if err != nil || len(done) == 0 {
			return "", false
		}
		return done[0].ID(), false
	}
	ob = orderbook.NewOrderBook()
	for i := range ops[:peerDepth] {
		run(&ops[i])
	}
	runtime.GC()
	start := time.Now()
	for i := peerDepth; i < len(ops); i++ {
		run(&ops[i])
	}
	took := time.Since(start)
	ob = orderbook.NewOrderBook()
	for i := range ops {
		if fill, ok := run(&ops[i]); fill != ops[i].fill || ok != ops[i].cancel {
			b.Fatalf("op %d: the peer is not deterministic", i)
		}
	}
	return took
}

// timeEngine runs the flow on the engine, times its part after the depth,
// and checks every fill and cancel against the peer's.
func timeEngine(b *testing.B, ops []peerOp) time.Duration {
	cfg := Config{Models: []string{"H100"}, Regions: []string{"r"}, HeartbeatIntervalMs: MaxInterval, MissedBeats: 2, ReservationTTLms: MaxInterval}
	e, err := NewEngine(cfg)
	if err != nil {
		b.Fatal(err)
	}
	rtt := []uint16{5}
	cmds := make([]Command, len(ops))
	for i, op := range ops {
		switch op.kind {
		case peerAsk:
			cmds[i] = Command{Kind: KindUpsertMachine, Machine: op.id, Provider: "p", Model: "H100", GPUs: 1, VRAMGiB: 80,
				Region: "r", Price: op.price, Verified: true, RTTms: rtt}
		case peerBid:
			cmds[i] = Command{Kind: KindPlaceOrder, Order: op.id, Buyer: "buyer", Type: GoodTilCancelled, Model: "H100", GPUs: 1,
				Price: op.price, Region: "r", MaxRTTms: MaxRTTms, Hours: 1, ExpiresAt: 1 << 50}
		case peerCancel:
			cmds[i] = Command{Kind: KindCancelOrder, Order: op.id, Buyer: "buyer"}
		}
		cmds[i].Now = int64(i + 1)
	}
	got := make([]string, len(ops))
	cancelled := make([]bool, len(ops))
	apply := func(i int) {
		c := &cmds[i]
		evs, err := e.Apply(c)
		cancelled[i] = c.Kind == KindCancelOrder && err == nil
		for _, ev := range evs {
			if ev.Kind != EvMatched {
				continue
			}
			if c.Kind == KindUpsertMachine {
				got[i] = ev.Order
			} else {
				got[i] = ev.Machine
			}
		}
	}
	for i := range ops[:peerDepth] {
		apply(i)
	}
	runtime.GC()
	start := time.Now()
	for i := peerDepth; i < len(ops); i++ {
		apply(i)
	}
	took := time.Since(start)
	for i, op := range ops {
		if got[i] != op.fill || (op.kind == peerCancel && cancelled[i] != op.cancel) {
			b.Fatalf("op %d (%d, %s at %d): the engine filled %q (cancelled %v), the peer %q (%v)", i, op.kind, op.id, op.price, got[i], cancelled[i], op.fill, op.cancel)
		}
	}
	return took
}
