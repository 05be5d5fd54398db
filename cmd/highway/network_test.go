package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

// The public network dashboard draws capacity and price history from the
// recorded snapshots as SVG, with the configured reference price line and
// its source.
func TestNetworkDashboard(t *testing.T) {
	srv := startServerAt(t, "127.0.0.1:0", dbtest.SQLiteDSN(t), accounts.Config{}, func(m *Main) {
		m.Config.ReferencePrice = defaultReference
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
}
