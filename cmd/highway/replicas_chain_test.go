//go:build !race

// A real agent proves its verification PoC on the CPU in one second,
// which the race detector slows below the required rate (as in the e2e
// test): `make test` runs this in its race-free pass.

package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/chain/client"
	"github.com/highway-compute/highway/chain/network"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/models/dbtest"
)

// dyingLeaderChain is the leader's chain client, dying with its process
// the moment its first lease transaction commits: the lease is on chain,
// escrow and all, and the leader never learns it (the answer never comes
// back), so it records nothing. That is kill -9 at the worst moment.
type dyingLeaderChain struct {
	broker.Chain
	once    sync.Once
	created chan uint64   // the lease the dying leader created
	release chan struct{} // closed when the test ends
}

func (d *dyingLeaderChain) Send(ctx context.Context, s client.Signer, msgs ...sdk.Msg) (*client.TxResult, error) {
	res, err := d.Chain.Send(ctx, s, msgs...)
	if _, ok := msgs[0].(*escrowtypes.MsgCreateLease); !ok || err != nil {
		return res, err
	}
	dies := false
	d.once.Do(func() { dies = true })
	if !dies {
		return res, err
	}
	id, _ := res.Attr("highway.escrow.v1.EventLeaseCreated", "lease_id")
	n, _ := strconv.ParseUint(id, 10, 64)
	d.created <- n
	<-d.release
	return nil, errors.New("the process died")
}

// TestFailoverWithLeasesInFlight: three replicas on one PostgreSQL and a
// real chain behind a round-robin balancer, a real provider agent and a
// buyer talking through it. The buyer's order matches; the leader sends
// its lease transaction, which commits, and dies before it records the
// lease (its chain answer lost, then its database session ended). A
// standby takes over; its chain indexer finds the lease no page knows
// (by the quote nonce the order recorded before the transaction), closes
// it with the buyer's wallet, and fails the order saying the escrow came
// back: the order is never both failed and charged. The buyer then rents
// through the new leader and gets a lease on the GPU the orphan had
// reserved. The books: the buyer's faucet grant is exactly the wallet's
// balance plus what every lease on chain holds, paid and charged in fees;
// no GPU is leased twice; every live replica lists the same market.
func TestFailoverWithLeasesInFlight(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	provKey := secp256k1.GenPrivKey()
	ch := startE2EChain(t, 250*time.Millisecond, network.Account{Name: "provider", Key: provKey, Funds: math.NewInt(1_000_000)})
	dying := &dyingLeaderChain{Chain: ch.client, created: make(chan uint64, 1), release: make(chan struct{})}
	defer close(dying.release)
	var replicas []*Main
	for i := range 3 {
		chain := broker.Chain(ch.client)
		if i == 0 {
			chain = dying
		}
		tune := ch.tune(chain)
		replicas = append(replicas, startServerAt(t, "127.0.0.1:0", dsn, accounts.Config{}, func(m *Main) {
			tune(m)
			fastFailover(m)
		}))
	}
	if replicas[0].Role() != "leader" {
		t.Fatal("the first replica does not lead")
	}
	proxy := &failoverProxy{replicas: replicas}
	lb := httptest.NewServer(proxy)
	defer lb.Close()
	e := ch.market(t, replicas[0])
	e.agentURL = lb.URL

	provBrowser, provAPI := e.user("provider@example.com", "provider")
	provAPI.base = lb.URL
	if code := provAPI.do(http.MethodPut, "/prices", map[string]string{"model": "H100", "price_per_gpu_hour": "3600000"}, nil); code != http.StatusOK {
		t.Fatalf("set price: %d", code)
	}
	e.runAgent(provBrowser, provKey, "h100x2", "failover", nil)
	_, buyer := e.user("buyer@example.com", "buyer")
	buyer.base = lb.URL
	var offers struct {
		Offers []struct {
			Free     int64 `json:"gpus_free"`
			Verified bool  `json:"verified"`
		} `json:"offers"`
	}
	waitFor(t, "the verified offer through the balancer", 60*time.Second, func() bool {
		offers.Offers = nil
		buyer.do(http.MethodGet, "/offers?model=H100", nil, &offers)
		return len(offers.Offers) == 1 && offers.Offers[0].Verified && offers.Offers[0].Free == 2
	})
	if code := buyer.do(http.MethodPost, "/wallet/faucet", nil, nil); code != http.StatusOK {
		t.Fatalf("faucet: %d", code)
	}
	var wallet struct {
		Address string `json:"address"`
	}
	buyer.do(http.MethodGet, "/wallet", nil, &wallet)
	granted := e.faucet
	waitFor(t, "the faucet's grant", 10*time.Second, func() bool { return e.balance(wallet.Address).Equal(granted) })

	type order struct {
		Order struct {
			ID, Status, Failure string
			LeaseID             string `json:"lease_id"`
		} `json:"order"`
	}
	place := func() order {
		var o order
		code := buyer.do(http.MethodPost, "/orders", map[string]any{"type": "fok", "model": "H100", "count": 1, "max_price_per_gpu_hour": "4000000",
			"hours": 1, "workload": map[string]string{"command": "sleep 600"}}, &o)
		if code != http.StatusCreated || o.Order.Status != "matched" {
			t.Fatalf("order: %d %+v", code, o)
		}
		return o
	}
	first := place()
	var orphan uint64
	select {
	case orphan = <-dying.created:
	case <-time.After(60 * time.Second):
		t.Fatal("the leader sent no lease transaction")
	}
	t.Logf("lease %d is on chain; its leader dies before recording it", orphan)
	next := endLeadership(t, replicas)

	// The orphan is closed and the order fails, saying where the escrow went.
	waitFor(t, "the first order to end", 60*time.Second, func() bool {
		buyer.do(http.MethodGet, "/orders/"+first.Order.ID, nil, &first)
		return first.Order.Status != "matched" && first.Order.Status != "open"
	})
	if first.Order.Status != "failed" || first.Order.LeaseID != "" || !strings.Contains(first.Order.Failure, "escrow returned") {
		t.Fatalf("the order whose lease its leader never recorded: %+v", first.Order)
	}
	waitFor(t, "the orphan lease closed on chain", 30*time.Second, func() bool {
		l, err := e.chain.Lease(context.Background(), orphan)
		return err == nil && l.Status != escrowtypes.LEASE_STATUS_ACTIVE
	})

	// The market goes on: the buyer rents through the new leader.
	second := place()
	waitFor(t, "the second order's lease", 60*time.Second, func() bool {
		buyer.do(http.MethodGet, "/orders/"+second.Order.ID, nil, &second)
		if second.Order.Status == "failed" {
			t.Fatalf("the second order failed: %s", second.Order.Failure)
		}
		return second.Order.LeaseID != ""
	})

	// The books.
	ctx := context.Background()
	leases, err := next.Store.LeasesOf(ctx, userID(t, next, "buyer@example.com"), false, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 1 || leases[0].OrderID != second.Order.ID {
		t.Fatalf("the buyer's recorded leases: %+v, want the second order's alone", leases)
	}
	held := math.ZeroInt()
	for _, id := range []uint64{orphan, leases[0].ChainLeaseID} {
		l, err := e.chain.Lease(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if l.Buyer != wallet.Address {
			t.Fatalf("lease %d's buyer %s, not the buyer's wallet", id, l.Buyer)
		}
		held = held.Add(l.Remaining).Add(l.Pending).Add(l.Frozen).Add(l.Paid).Add(l.Fees)
	}
	if got := e.balance(wallet.Address).Add(held); !got.Equal(granted) {
		t.Fatalf("the buyer's books: wallet %s + leases %s = %s, granted %s", e.balance(wallet.Address), held, got, granted)
	}
	if uuids := strings.Split(leases[0].GPUUUIDs, ","); len(uuids) != 1 || uuids[0] == "" {
		t.Fatalf("the second lease's GPUs: %q", leases[0].GPUUUIDs)
	}
	live := []*Main{}
	for _, m := range replicas {
		if m.Role() != "deposed" {
			live = append(live, m)
		}
	}
	if len(live) != 2 {
		t.Fatalf("%d live replicas, want 2", len(live))
	}
	waitFor(t, "every live replica listing the same market", 5*time.Second, func() bool {
		var bodies []string
		for _, m := range live {
			resp, err := http.Get(m.URL() + "/api/v1/offers?model=H100")
			if err != nil {
				return false
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			bodies = append(bodies, string(body))
		}
		return bodies[0] == bodies[1] && strings.Contains(bodies[0], `"gpus_free":1`)
	})
}
