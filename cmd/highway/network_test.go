package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/protocol"
)

// The public network dashboard draws capacity and price history from the
// recorded snapshots as SVG, with the configured reference price line and
// its source.
func TestNetworkDashboard(t *testing.T) {
	srv := startServerAt(t, "127.0.0.1:0", dbtest.SQLiteDSN(t), accounts.Config{}, func(m *Main) {
		m.Config.ReferencePrice = defaultReference
		m.Config.Regions = "us-east=127.0.0.1:1,eu-west=127.0.0.1:1"
	})
	b := newBrowser(t, srv)
	empty := b.get("/network")
	wantStatus(t, empty, http.StatusOK)
	// The broker records a snapshot at start; no model has history yet.
	if empty.doc.Find(`[data-testid="chart-capacity"]`).Length() != 1 || empty.doc.Find(`[data-testid="chart-price-H100"]`).Length() != 0 {
		t.Fatalf("empty dashboard:\n%.1500s", empty.body)
	}
	now := time.Now().UTC().Truncate(time.Second)
	var rows []models.MarketSnapshot
	for i := 0; i < 3; i++ {
		at := now.Add(time.Duration(i-3) * time.Minute)
		rows = append(rows,
			models.MarketSnapshot{At: at, Model: models.SnapshotTotal, GPUsOnline: 8, GPUsFree: int64(8 - i), H100eMilli: 8000},
			models.MarketSnapshot{At: at, Model: "H100", GPUsOnline: 8, GPUsFree: int64(8 - i), MedianPrice: 2_490_000 + int64(i)*10_000, H100eMilli: 8000})
	}
	if err := srv.Store.AddSnapshots(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	p := b.get("/network")
	wantStatus(t, p, http.StatusOK)
	if p.doc.Find(`[data-testid="chart-capacity"] svg path.series`).Length() != 1 {
		t.Fatalf("no capacity line:\n%.2000s", p.body)
	}
	if p.doc.Find(`[data-testid="chart-price-H100"] svg title`).First().Text() == "" ||
		p.doc.Find(`[data-testid="chart-price-H100-ref"]`).Length() != 1 {
		t.Fatalf("no H100 price chart with its reference line:\n%.3000s", p.body)
	}
	if src := text(p, `[data-testid="reference-source"]`); !strings.Contains(src, "p5.48xlarge") {
		t.Fatalf("reference source = %q", src)
	}

	// GPUs by region: a machine counts where it answers fastest; an
	// empty region is listed with zeros.
	ctx := context.Background()
	u, _, err := accounts.New(srv.Store, accounts.Config{Hash: cheapHash}).Signup(ctx,
		accounts.SignupInput{Email: "prov@example.com", Password: "0123456789", Provider: true}, "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Market.SetPrice(ctx, u.ID, "H100", 2_000_000); err != nil {
		t.Fatal(err)
	}
	if err := srv.Store.DB.Create(&models.Machine{ID: "eu-box", ProviderID: u.ID, Hostname: "eu-box", RTTJSON: "{}", CreatedAt: now, UpdatedAt: now}).Error; err != nil {
		t.Fatal(err)
	}
	hb := &protocol.Heartbeat{AgentID: "agent-eu", ProviderAddress: "hwy1provider", RTTms: map[string]int64{"us-east": 90, "eu-west": 8}}
	for g := 0; g < 4; g++ {
		hb.GPUs = append(hb.GPUs, protocol.GPU{Index: g, UUID: fmt.Sprintf("GPU-eu-%d", g), Name: "NVIDIA H100 80GB HBM3", Class: "H100",
			MemoryTotalMiB: 81_920, Free: g != 0})
	}
	if err := srv.Market.MachineBeat(ctx, broker.Beat{MachineID: "eu-box", AgentID: hb.AgentID, ProviderID: u.ID, Heartbeat: hb}); err != nil {
		t.Fatal(err)
	}
	p = b.get("/network")
	eu, us := p.doc.Find(`[data-testid="region-eu-west"] td`), p.doc.Find(`[data-testid="region-us-east"] td`)
	if got := eu.Map(func(_ int, s *goquery.Selection) string { return s.Text() }); strings.Join(got, ",") != "eu-west,1,4,0" {
		t.Fatalf("eu-west row = %v, want 1 machine, 4 GPUs online, none free (not verified yet)", got)
	}
	if got := us.Map(func(_ int, s *goquery.Selection) string { return s.Text() }); strings.Join(got, ",") != "us-east,0,0,0" {
		t.Fatalf("us-east row = %v", got)
	}
}
