package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/handlers"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/provider-agent/gpu"
)

// TestRealGPUListing is the agent on a real NVIDIA machine: GPUs found
// through the driver's NVML (not the mock), reported with their live
// health, verified by the PoC and listed on the market. It runs only
// where HIGHWAY_REAL_NVML=1 (a machine with a driver; the project's GPU
// runs set it), and logs what it saw for docs/provider.md.
func TestRealGPUListing(t *testing.T) {
	// HIGHWAY_REAL_NVML=fake:PROFILE runs the same steps on go-nvml's
	// mock, to check the test itself before spending GPU time on it.
	mode := os.Getenv("HIGHWAY_REAL_NVML")
	lib := nvml.New()
	switch {
	case mode == "1":
	case strings.HasPrefix(mode, "fake:"):
		fake, err := gpu.FakeProfile(strings.TrimPrefix(mode, "fake:"))
		if err != nil {
			t.Fatal(err)
		}
		lib = fake
	default:
		t.Skip("needs an NVIDIA driver: set HIGHWAY_REAL_NVML=1 on a GPU machine")
	}
	srv := startServerAt(t, "127.0.0.1:0", dbtest.SQLiteDSN(t), accounts.Config{}, func(m *Main) {
		m.Agents = handlers.AgentConfig{HeartbeatInterval: time.Second, OfflineMisses: 3, MaxPoll: time.Second}
		m.Broker = broker.Config{VerifyParams: poc.DevParams(), VerifyWork: 5 * time.Second}
	})
	ctx := context.Background()
	u, _, err := accounts.New(srv.Store, accounts.Config{Hash: cheapHash}).Signup(ctx,
		accounts.SignupInput{Email: "gpu@example.com", Password: "0123456789", Provider: true}, "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	catalog, _ := srv.Market.Catalog()
	for _, model := range catalog {
		if err := srv.Market.SetPrice(ctx, u.ID, model, 2_000_000); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	sess, err := gpu.Open(lib)
	if err != nil {
		t.Fatalf("real NVML: %v", err)
	}
	t.Cleanup(func() { _ = sess.Close() }) // after the agent stops (cleanups run last first)
	snap, err := sess.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	seen, _ := json.MarshalIndent(snap, "", "  ")
	t.Logf("NVML (%s to open and read):\n%s", time.Since(start).Round(time.Millisecond), seen)

	id, key := registerTestAgent(t, srv, u.ID, "real-gpu")
	runTestAgent(t, srv, id, key, sess, "hwy1realgpuprovider", time.Second)

	listed := time.Now()
	var offers []highway.Offer
	waitFor(t, "the real GPUs verified and listed", 2*time.Minute, func() bool {
		offers, _ = srv.Market.Offers(highway.OfferFilter{})
		return len(offers) > 0
	})
	got, _ := json.MarshalIndent(offers, "", "  ")
	t.Logf("listed %s after the agent started:\n%s", time.Since(listed).Round(time.Millisecond), got)
	// A buyer asking for the card's nominal memory finds it.
	want := int64(protocol.GiB(snap.GPUs[0].MemoryTotalMiB))
	if found, _ := srv.Market.Offers(highway.OfferFilter{MinVRAMGiB: want}); len(found) != 1 || found[0].VRAMGiB != want {
		t.Fatalf("an offer with %d GiB is not found by a %d GiB filter: %+v", offers[0].VRAMGiB, want, found)
	}
	// The health the console shows is what NVML read (rows are written
	// behind the heartbeats, at most a second later).
	var ms []models.Machine
	waitFor(t, "the GPUs' health stored", 10*time.Second, func() bool {
		ms, err = srv.Store.ProviderMachines(ctx, u.ID)
		return err == nil && len(ms) == 1 && len(ms[0].GPUs) == len(snap.GPUs)
	})
	for _, g := range ms[0].GPUs {
		t.Logf("GPU %d %s %s: %d/%d MiB used, %d%% busy, %d °C, %d mW, free %v", g.Idx, g.Name, g.UUID, g.MemoryUsedMiB, g.MemoryTotalMiB,
			g.UtilizationPct, g.TemperatureC, g.PowerMW, g.Free)
	}
}
