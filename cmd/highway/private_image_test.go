//go:build !race

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"

	"github.com/highway-compute/highway/chain/network"
	"github.com/highway-compute/highway/provider-agent/runner"
	"github.com/highway-compute/highway/provider-agent/runner/registrytest"
)

// TestPrivateImageEndToEnd: a buyer rents a GPU for a private image in a
// registry, giving its login with the order. The real agent pulls it with
// that login (progress and digest reach the lease API and page) and runs
// it in a real container; the login is stored nowhere in clear (every
// table of the database is read for it), is never shown back, and is
// erased when the lease ends.
func TestPrivateImageEndToEnd(t *testing.T) {
	engine := containerEngine(t)
	reg := registrytest.New(t)
	const secret = "e2e-registry-token-71c4"
	reg.Login("buyer-bot", secret)
	img := registrytest.BusyboxImage(t, registrytest.NoiseLayer(t, 2<<20))
	ref, _ := reg.Push(t, "acme/trainer", "v3", img)
	digest, _ := img.Digest()
	registrytest.Evict(t, engine, img)

	provKey := secp256k1.GenPrivKey()
	e := startE2E(t, network.Account{Name: "provider", Key: provKey, Funds: math.NewInt(1_000_000)})
	e.containers = &runner.Docker{Binary: engine, Devices: runner.DevicesNone, Memory: "256m", PidsLimit: 64,
		Pull: &runner.Puller{Binary: engine, AllowPrivate: true}}
	provBrowser, provAPI := e.user("prov@example.com", "provider")
	if code := provAPI.do(http.MethodPut, "/prices", map[string]string{"model": "H100", "price_per_gpu_hour": "3600000"}, nil); code != http.StatusOK {
		t.Fatalf("set price: %d", code)
	}
	e.runAgent(provBrowser, provKey, "h100x1", "e2e-private", nil)
	waitFor(t, "the verified offer", 60*time.Second, func() bool {
		var offers struct{ Offers []struct{ ID string } }
		provAPI.do(http.MethodGet, "/offers?model=H100", nil, &offers)
		return len(offers.Offers) == 1
	})

	buyerBrowser, buyer := e.user("buyer@example.com", "buyer")
	if code := buyer.do(http.MethodPost, "/wallet/faucet", nil, nil); code != http.StatusOK {
		t.Fatalf("faucet: %d", code)
	}
	// A login with a command is refused, with the field named.
	var bad struct{ Error struct{ Code, Field string } }
	if code := buyer.do(http.MethodPost, "/orders", map[string]any{"type": "fok", "model": "H100", "max_price_per_gpu_hour": "4000000", "hours": 1,
		"workload": map[string]any{"command": "true", "registry_auth": map[string]string{"username": "u", "password": "p"}}}, &bad); code != http.StatusUnprocessableEntity ||
		bad.Error.Field != "workload.registry_auth" {
		t.Fatalf("login with a command: %d %+v", code, bad)
	}

	// A resting order keeps the sealed login until it is cancelled.
	var resting struct{ Order struct{ ID, Status string } }
	if code := buyer.do(http.MethodPost, "/orders", map[string]any{"type": "gtc", "model": "H100", "max_price_per_gpu_hour": "1000000", "hours": 1,
		"expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		"workload":   map[string]any{"image": ref, "registry_auth": map[string]string{"username": "buyer-bot", "password": secret}}}, &resting); code != http.StatusCreated ||
		resting.Order.Status != "open" {
		t.Fatalf("resting order: %d %+v", code, resting)
	}
	sealedLogin := func(id string) string {
		o, err := e.srv.Store.OrderByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return o.RegistryLogin
	}
	if sealedLogin(resting.Order.ID) == "" {
		t.Fatal("the resting order has no sealed login")
	}
	if code := buyer.do(http.MethodDelete, "/orders/"+resting.Order.ID, nil, nil); code != http.StatusOK {
		t.Fatalf("cancel: %d", code)
	}
	if sealedLogin(resting.Order.ID) != "" {
		t.Fatal("a cancelled order keeps the login")
	}

	var placed struct {
		Order struct {
			ID, Status, Failure string
			LeaseID             string         `json:"lease_id"`
			Workload            map[string]any `json:"workload"`
		} `json:"order"`
	}
	code := buyer.do(http.MethodPost, "/orders", map[string]any{"type": "fok", "model": "H100", "max_price_per_gpu_hour": "4000000", "hours": 1,
		"workload": map[string]any{"image": ref, "args": []string{"sh", "-c", "echo private image up; sleep 300"},
			"registry_auth": map[string]string{"username": "buyer-bot", "password": secret}}}, &placed)
	if code != http.StatusCreated {
		t.Fatalf("order: %d %+v", code, placed)
	}
	if _, shown := placed.Order.Workload["registry_auth"]; shown {
		t.Fatalf("the order shows the login back: %+v", placed.Order.Workload)
	}
	waitFor(t, "the lease", 30*time.Second, func() bool {
		buyer.do(http.MethodGet, "/orders/"+placed.Order.ID, nil, &placed)
		if placed.Order.Status == "failed" {
			t.Fatalf("order failed: %s", placed.Order.Failure)
		}
		return placed.Order.LeaseID != ""
	})
	leaseID := placed.Order.LeaseID
	var logs struct{ Lines []struct{ Text string } }
	waitFor(t, "the private image's output", 60*time.Second, func() bool {
		buyer.do(http.MethodGet, "/leases/"+leaseID+"/logs", nil, &logs)
		for _, l := range logs.Lines {
			if strings.Contains(l.Text, "workload failed") {
				t.Fatalf("workload failed: %+v", logs.Lines)
			}
			if l.Text == "private image up" {
				return true
			}
		}
		return false
	})
	var lease struct {
		Lease struct {
			WorkloadStatus string `json:"workload_status"`
			Pull           struct {
				Done   int64 `json:"done_bytes"`
				Total  int64 `json:"total_bytes"`
				Digest string
			} `json:"image_pull"`
		} `json:"lease"`
	}
	waitFor(t, "the pull's report", 15*time.Second, func() bool {
		buyer.do(http.MethodGet, "/leases/"+leaseID, nil, &lease)
		return lease.Lease.Pull.Digest != "" && lease.Lease.Pull.Done == lease.Lease.Pull.Total
	})
	if lease.Lease.Pull.Digest != digest.String() || lease.Lease.Pull.Total < 2<<20 {
		t.Fatalf("pull report %+v, want digest %s", lease.Lease.Pull, digest)
	}
	page := buyerBrowser.get("/leases/" + leaseID)
	if !strings.Contains(page.body, digest.String()) || strings.Contains(page.body, secret) {
		t.Fatal("the lease page shows no digest, or shows the login")
	}

	// The login is nowhere in clear: not in any table, not in the stored
	// assignment, not in the log lines.
	leak := func() string {
		tables, err := e.srv.Store.DB.Migrator().GetTables()
		if err != nil {
			t.Fatal(err)
		}
		for _, tb := range tables {
			var rows []map[string]any
			if err := e.srv.Store.DB.Table(tb).Find(&rows).Error; err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if strings.Contains(fmt.Sprint(r), secret) {
					return tb
				}
			}
		}
		return ""
	}
	if tb := leak(); tb != "" {
		t.Fatalf("the registry password is stored in clear in %s", tb)
	}
	if sealedLogin(placed.Order.ID) == "" {
		t.Fatal("no sealed login on the live lease's order")
	}

	// The lease ends: the sealed login is erased.
	if code := buyer.do(http.MethodPost, "/leases/"+leaseID+"/close", nil, nil); code != http.StatusOK {
		t.Fatalf("close: %d", code)
	}
	waitFor(t, "the login erased", 15*time.Second, func() bool { return sealedLogin(placed.Order.ID) == "" })
}

// containerEngine is the engine the container tests use
// (HIGHWAY_CONTAINER_ENGINE, else podman or docker), or skips saying why
// (fails in CI, HIGHWAY_REQUIRE_CONTAINERS=1).
func containerEngine(t *testing.T) string {
	t.Helper()
	candidates := []string{"podman", "docker"}
	if e := os.Getenv("HIGHWAY_CONTAINER_ENGINE"); e != "" {
		candidates = []string{e}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := runner.FindEngine(ctx, candidates, devDemoImage)
	if err != nil {
		if os.Getenv("HIGHWAY_REQUIRE_CONTAINERS") == "1" {
			t.Fatalf("a container engine is required (HIGHWAY_REQUIRE_CONTAINERS=1): %v", err)
		}
		t.Skipf("skipping real-container test: %v", err)
	}
	return bin
}
