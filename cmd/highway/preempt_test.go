//go:build !race

package main

import (
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"

	"github.com/highway-compute/highway/chain/network"
)

// preemptLease is a lease as the preemption checks read it.
type preemptLease struct {
	Lease struct {
		ID            string
		Status        string
		Interruptible bool
		PreemptAt     *string `json:"preempt_at"`
		PreemptedBy   string  `json:"preempted_by"`
		PricePerEpoch string  `json:"price_per_epoch"`
		EpochsTotal   int64   `json:"epochs_total"`
		CreatedAt     string  `json:"created_at"`
		CloseReason   string  `json:"close_reason"`
		Escrow        struct{ Remaining, Pending, Paid, Refunded, Frozen, Fees string }
	}
}

// placedOrder is what POST /orders answers.
type placedOrder struct {
	Order struct {
		ID, Status, Failure string
		LeaseID             string `json:"lease_id"`
	} `json:"order"`
	Error struct{ Code, Field string } `json:"error"`
}

// preemptWorld is a provider with one H100 that rents idle GPUs as
// interruptible (floor 1.8, ask 3.6 HWY, 10 s notice) and two funded
// buyers.
type preemptWorld struct {
	e                *e2eMarket
	prov, spot, paid apiClient
	offer            string
}

func startPreemptWorld(t testing.TB) *preemptWorld {
	provKey := secp256k1.GenPrivKey()
	e := startE2E(t, network.Account{Name: "provider", Key: provKey, Funds: math.NewInt(1_000_000)})
	provBrowser, prov := e.user("prov@example.com", "provider")
	if code := prov.do(http.MethodPut, "/prices", map[string]any{"model": "H100", "price_per_gpu_hour": "3600000",
		"spot_floor_per_gpu_hour": "1800000", "notice_s": 10}, nil); code != http.StatusOK {
		t.Fatalf("set terms: %d", code)
	}
	e.runAgent(provBrowser, provKey, "h100x1", "preempt", nil)
	var offers struct {
		Offers []struct {
			ID        string
			SpotFloor string `json:"spot_floor_per_gpu_hour"`
			NoticeS   int64  `json:"notice_s"`
		}
	}
	waitFor(t, "the offer", 60*time.Second, func() bool {
		prov.do(http.MethodGet, "/offers", nil, &offers)
		return len(offers.Offers) == 1
	})
	if o := offers.Offers[0]; o.SpotFloor != "1800000" || o.NoticeS != 10 {
		t.Fatalf("offer shows floor %q notice %d, want 1800000 and 10", o.SpotFloor, o.NoticeS)
	}
	_, spot := e.user("spot@example.com", "buyer")
	_, paid := e.user("ondemand@example.com", "buyer")
	spot.do(http.MethodPost, "/wallet/faucet", nil, nil)
	paid.do(http.MethodPost, "/wallet/faucet", nil, nil)
	return &preemptWorld{e: e, prov: prov, spot: spot, paid: paid, offer: offers.Offers[0].ID}
}

// rent places an order and waits for its lease's workload to print first.
func (w *preemptWorld) rent(t testing.TB, c apiClient, body map[string]any, first string) string {
	var o placedOrder
	if code := c.do(http.MethodPost, "/orders", body, &o); code != http.StatusCreated {
		t.Fatalf("order: %d %+v", code, o)
	}
	waitFor(t, "the lease to print "+first, 60*time.Second, func() bool {
		if o.Order.LeaseID == "" {
			c.do(http.MethodGet, "/orders/"+o.Order.ID, nil, &o)
			if o.Order.Status == "failed" {
				t.Fatalf("order failed: %s", o.Order.Failure)
			}
			return false
		}
		return strings.Contains(w.logs(c, o.Order.LeaseID), first)
	})
	return o.Order.LeaseID
}

func (w *preemptWorld) logs(c apiClient, leaseID string) string {
	var logs struct{ Lines []struct{ Text string } }
	c.do(http.MethodGet, "/leases/"+leaseID+"/logs", nil, &logs)
	var b strings.Builder
	for _, l := range logs.Lines {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}

// spotWorkload checkpoints on SIGTERM, as a preemptible job should.
var spotWorkload = map[string]string{"command": "echo spot up; trap 'echo checkpoint written; exit 0' TERM; sleep 300 & wait"}

// preempt runs an interruptible lease, then an on-demand order for the
// same GPU, and returns the leases and how long the order took to reach
// the interruptible workload as its preemption notice.
func (w *preemptWorld) preempt(t testing.TB) (spotLease, onDemandOrder string, notice time.Duration) {
	spotLease = w.rent(t, w.spot, map[string]any{"type": "rent_now", "offer_id": w.offer, "interruptible": true, "hours": 1,
		"workload": spotWorkload}, "spot up")
	start := time.Now()
	var o placedOrder
	if code := w.paid.do(http.MethodPost, "/orders", map[string]any{"type": "fok", "model": "H100", "count": 1,
		"max_price_per_gpu_hour": "3600000", "hours": 1, "workload": map[string]string{"command": "echo on demand up; sleep 300"}}, &o); code != http.StatusCreated {
		t.Fatalf("on-demand order: %d %+v", code, o)
	}
	waitFor(t, "the preemption notice in the interruptible lease's log", 30*time.Second, func() bool {
		return strings.Contains(w.logs(w.spot, spotLease), "preemption notice")
	})
	return spotLease, o.Order.ID, time.Since(start)
}

// TestPreemptionEndToEnd is interruptible capacity on the real loop: a
// chain, the marketplace, an agent running workloads. A bid below the
// floor is refused; a bid at the floor runs; an on-demand order preempts
// it; the workload gets its notice (and checkpoints on SIGTERM), the buyer
// sees preempt_at by API and an alert, cannot extend the preempted lease,
// and the lease closes on chain when the notice ends with every unserved
// epoch (the one cut short included) refunded; the on-demand lease starts
// only then.
func TestPreemptionEndToEnd(t *testing.T) {
	w := startPreemptWorld(t)

	// Bad terms and bids change nothing.
	var prices struct {
		Prices []struct {
			Interruptible *struct {
				Floor   string `json:"floor_per_gpu_hour"`
				NoticeS int64  `json:"notice_s"`
			}
		}
	}
	for _, bad := range []map[string]any{
		{"model": "H100", "price_per_gpu_hour": "3600000", "spot_floor_per_gpu_hour": "3600001"},
		{"model": "H100", "price_per_gpu_hour": "3000000", "spot_floor_per_gpu_hour": "1800000", "notice_s": 5},
		{"model": "H100", "price_per_gpu_hour": "3000000", "spot_floor_per_gpu_hour": "-1"},
	} {
		if code := w.prov.do(http.MethodPut, "/prices", bad, nil); code != http.StatusUnprocessableEntity {
			t.Fatalf("terms %v: %d, want 422", bad, code)
		}
	}
	w.prov.do(http.MethodGet, "/prices", nil, &prices)
	if len(prices.Prices) != 1 || prices.Prices[0].Interruptible == nil || prices.Prices[0].Interruptible.Floor != "1800000" || prices.Prices[0].Interruptible.NoticeS != 10 {
		t.Fatalf("refused terms changed the prices: %+v", prices)
	}
	var refused struct{ Error struct{ Field string } }
	if code := w.spot.do(http.MethodPost, "/orders", map[string]any{"type": "rent_now", "offer_id": w.offer, "interruptible": true,
		"max_price_per_gpu_hour": "1799999", "hours": 1, "workload": spotWorkload}, &refused); code != http.StatusUnprocessableEntity || refused.Error.Field != "max_price_per_gpu_hour" {
		t.Fatalf("bid below the floor: %d %+v", code, refused)
	}

	spotLease, odOrder, notice := w.preempt(t)
	t.Logf("preemption notice reached the workload %v after the on-demand order", notice)
	var l preemptLease
	w.spot.do(http.MethodGet, "/leases/"+spotLease, nil, &l)
	if !l.Lease.Interruptible || l.Lease.PreemptAt == nil || l.Lease.PreemptedBy != odOrder {
		t.Fatalf("preempted lease by API: %+v", l.Lease)
	}
	preemptAt, _ := time.Parse(time.RFC3339Nano, *l.Lease.PreemptAt)
	if code := w.spot.do(http.MethodPost, "/leases/"+spotLease+"/extend", map[string]any{"hours": 1}, nil); code != http.StatusConflict {
		t.Fatalf("extending a preempted lease: %d, want 409", code)
	}
	var notes struct{ Notifications []struct{ Kind, Link string } }
	w.spot.do(http.MethodGet, "/notifications", nil, &notes)
	if len(notes.Notifications) == 0 || notes.Notifications[0].Kind != "preempted" {
		t.Fatalf("no preemption alert: %+v", notes)
	}

	waitFor(t, "the preempted lease to close on chain", 40*time.Second, func() bool {
		w.spot.do(http.MethodGet, "/leases/"+spotLease, nil, &l)
		return l.Lease.Status == "closed"
	})
	closedBy := time.Now()
	if l.Lease.CloseReason != "preempted" {
		t.Fatalf("close reason %q, want preempted", l.Lease.CloseReason)
	}
	if !strings.Contains(w.logs(w.spot, spotLease), "checkpoint written") {
		t.Fatalf("the workload did not get SIGTERM to checkpoint:\n%s", w.logs(w.spot, spotLease))
	}
	// Money: every epoch not served is refunded; charged epochs are at
	// most those that ended before the close (no charge for the epoch cut
	// short), and the escrow adds up.
	per := bigOf(t, l.Lease.PricePerEpoch)
	esc := l.Lease.Escrow
	charged := new(big.Int).Add(bigOf(t, esc.Paid), bigOf(t, esc.Pending))
	charged.Add(charged, bigOf(t, esc.Fees))
	created, _ := time.Parse(time.RFC3339, l.Lease.CreatedAt)
	epoch := 8 * 250 * time.Millisecond
	served := int64((closedBy.Sub(created) + time.Second) / epoch)
	if max := new(big.Int).Mul(per, big.NewInt(served)); charged.Cmp(max) > 0 {
		t.Fatalf("charged %s for a lease that served at most %d epochs of %s", charged, served, per)
	}
	sum := new(big.Int).Add(charged, bigOf(t, esc.Refunded))
	sum.Add(sum, bigOf(t, esc.Remaining))
	sum.Add(sum, bigOf(t, esc.Frozen))
	if want := new(big.Int).Mul(per, big.NewInt(l.Lease.EpochsTotal)); sum.Cmp(want) != 0 || bigOf(t, esc.Refunded).Sign() <= 0 {
		t.Fatalf("escrow does not add up after the preemption: %+v, %d epochs of %s", esc, l.Lease.EpochsTotal, per)
	}

	// The on-demand order gets the GPU once the notice has run out.
	var od placedOrder
	waitFor(t, "the on-demand lease", 60*time.Second, func() bool {
		w.paid.do(http.MethodGet, "/orders/"+odOrder, nil, &od)
		return od.Order.LeaseID != ""
	})
	var odl preemptLease
	w.paid.do(http.MethodGet, "/leases/"+od.Order.LeaseID, nil, &odl)
	if at, _ := time.Parse(time.RFC3339, odl.Lease.CreatedAt); at.Before(preemptAt.Truncate(time.Second)) || odl.Lease.Interruptible {
		t.Fatalf("on-demand lease created %s, before the notice ended at %s (or marked interruptible)", odl.Lease.CreatedAt, preemptAt)
	}
}

// BenchmarkE2EPreemptNotice measures, on the whole loop (a chain with
// 250 ms blocks, the marketplace, an agent running the workload), the time
// from the on-demand order's request to the interruptible workload's log
// showing its preemption notice: match and preemption in the engine, the
// assignment through the agent's long poll, the SIGTERM, and the log line
// shipped back to the marketplace (so an upper bound on the agent's
// receipt). One GPU: run it with -benchtime 1x, as make bench does.
func BenchmarkE2EPreemptNotice(b *testing.B) {
	w := startPreemptWorld(b)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		_, _, d := w.preempt(b)
		total += d
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "BENCH:e2e_preempt_notice_ms:ms")
}

func bigOf(t testing.TB, s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("not an amount: %q", s)
	}
	return v
}
