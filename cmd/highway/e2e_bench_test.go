//go:build !race

package main

import (
	"net/http"
	"testing"
	"time"

	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"

	"github.com/highway-compute/highway/chain/network"
)

// BenchmarkE2ERentToRunning measures, on a chain with 1 s blocks, the time
// from the buyer's order request to the workload's first log line reaching
// the marketplace: match, the agent's signed quote, MsgCreateLease
// committed in a block, the start assignment, the process starting and its
// output shipped back.
func BenchmarkE2ERentToRunning(b *testing.B) {
	provKey := secp256k1.GenPrivKey()
	e := startE2EWith(b, time.Second, network.Account{Name: "provider", Key: provKey, Funds: math.NewInt(1_000_000)})
	provBrowser, provAPI := e.user("prov@example.com", "provider")
	provAPI.do(http.MethodPut, "/prices", map[string]string{"model": "H100", "price_per_gpu_hour": "3600000"}, nil)
	e.runAgent(provBrowser, provKey, "h100x1", "bench", nil)
	var offers struct{ Offers []struct{ ID string } }
	waitFor(b, "the offer", 60*time.Second, func() bool {
		provAPI.do(http.MethodGet, "/offers", nil, &offers)
		return len(offers.Offers) == 1
	})
	_, buyer := e.user("buyer@example.com", "buyer")
	buyer.do(http.MethodPost, "/wallet/faucet", nil, nil)
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		var placed struct {
			Order struct {
				ID, Status, Failure string
				LeaseID             string `json:"lease_id"`
			} `json:"order"`
		}
		if code := buyer.do(http.MethodPost, "/orders", map[string]any{"type": "rent_now", "offer_id": offers.Offers[0].ID, "hours": 1,
			"workload": map[string]string{"command": "echo running; sleep 30"}}, &placed); code != http.StatusCreated {
			b.Fatalf("order: %d %+v", code, placed)
		}
		var logs struct{ Lines []struct{ Text string } }
		waitFor(b, "the first log line", 60*time.Second, func() bool {
			if placed.Order.LeaseID == "" {
				buyer.do(http.MethodGet, "/orders/"+placed.Order.ID, nil, &placed)
				if placed.Order.Status == "failed" {
					b.Fatalf("order failed: %s", placed.Order.Failure)
				}
				return false
			}
			buyer.do(http.MethodGet, "/leases/"+placed.Order.LeaseID+"/logs", nil, &logs)
			return len(logs.Lines) > 0
		})
		total += time.Since(start)
		buyer.do(http.MethodPost, "/leases/"+placed.Order.LeaseID+"/close", nil, nil)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "BENCH:e2e_rent_to_running_ms:ms")
}
