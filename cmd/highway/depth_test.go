package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

// The depth of a model without a chain: the bid side from resting (gtc)
// orders only, summed by price, highest first; the last matches and the
// hour's clearing price from the leases; an unknown model or region is
// refused by the API (422 JSON) and beside the page's field.
func TestDepthWithoutChain(t *testing.T) {
	m := startServer(t, dbtest.SQLiteDSN(t), accounts.Config{})
	ctx := context.Background()
	buyer := newBrowser(t, m)
	wantStatus(t, buyer.signup("buyer@example.com", "a long passphrase", "buyer"), http.StatusSeeOther)
	u := mustUser(t, m, "buyer@example.com")
	for i, o := range []struct {
		typ, model, status string
		gpus, price        int64
	}{
		{"gtc", "H100", models.OrderOpen, 2, 2_000_000},
		{"gtc", "H100", models.OrderOpen, 1, 2_000_000},
		{"gtc", "H100", models.OrderOpen, 4, 1_500_000},
		{"fok", "H100", models.OrderOpen, 8, 9_000_000},      // does not rest
		{"gtc", "H100", models.OrderCancelled, 8, 9_000_000}, // gone
		{"gtc", "A100", models.OrderOpen, 8, 9_000_000},      // another model
	} {
		if _, err := m.Store.CreateOrder(ctx, &models.Order{ID: models.NewID(), BuyerID: u.ID, Type: o.typ, Model: o.model, GPUs: o.gpus,
			MaxPrice: o.price, Region: "local", Hours: 1, WorkloadJSON: `{}`, Status: o.status, IdempotencyKey: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	l := &models.Lease{ID: models.NewID(), ChainLeaseID: 1, OrderID: "o", BuyerID: u.ID, ProviderID: u.ID, MachineID: "m", Model: "H100", GPUs: 2,
		PricePerHour: 3_000_000, PricePerEpoch: "1", Status: models.LeaseActive, Remaining: "0", Pending: "0", Frozen: "0", Paid: "0",
		Refunded: "0", Fees: "0", EndsAt: time.Now().Add(time.Hour)}
	if err := m.Store.CreateLease(ctx, l); err != nil {
		t.Fatal(err)
	}

	var d struct {
		Bids []struct {
			Price  string `json:"price_per_gpu_hour"`
			GPUs   int64  `json:"gpus"`
			Orders int    `json:"orders"`
		} `json:"bids"`
		Asks        []any   `json:"asks"`
		BestBid     *string `json:"best_bid"`
		BestAsk     *string `json:"best_ask"`
		Spread      *string `json:"spread"`
		LastMatches []struct {
			GPUs  int64  `json:"gpus"`
			Price string `json:"price_per_gpu_hour"`
		} `json:"last_matches"`
		Clearing []struct {
			Price *string `json:"price_per_gpu_hour"`
			GPUs  int64   `json:"gpus"`
		} `json:"clearing"`
	}
	if code := getJSON(t, m.URL()+"/api/v1/market/depth?model=H100", &d); code != http.StatusOK {
		t.Fatalf("depth: %d", code)
	}
	if len(d.Bids) != 2 || d.Bids[0].Price != "2000000" || d.Bids[0].GPUs != 3 || d.Bids[0].Orders != 2 || d.Bids[1].Price != "1500000" || d.Bids[1].GPUs != 4 {
		t.Errorf("bids %+v", d.Bids)
	}
	if d.BestBid == nil || *d.BestBid != "2000000" || d.BestAsk != nil || d.Spread != nil || len(d.Asks) != 0 {
		t.Errorf("best bid %v, best ask %v, spread %v, asks %v", d.BestBid, d.BestAsk, d.Spread, d.Asks)
	}
	if len(d.LastMatches) != 1 || d.LastMatches[0].Price != "3000000" || d.LastMatches[0].GPUs != 2 {
		t.Errorf("last matches %+v", d.LastMatches)
	}
	if n := len(d.Clearing); n != 24 || d.Clearing[n-1].Price == nil || *d.Clearing[n-1].Price != "3000000" || d.Clearing[n-1].GPUs != 2 || d.Clearing[0].Price != nil {
		t.Errorf("clearing %+v", d.Clearing)
	}

	for _, q := range []string{"", "?model=H9000", "?model=H100&region=atlantis"} {
		var e struct {
			Error struct{ Code, Field, Message string } `json:"error"`
		}
		if code := getJSON(t, m.URL()+"/api/v1/market/depth"+q, &e); code != http.StatusUnprocessableEntity || e.Error.Message == "" {
			t.Errorf("depth%s: %d %+v, want 422 with a message", q, code, e)
		}
	}

	// The page: the book, and a bad query refused beside its field.
	p := newBrowser(t, m).get("/market/depth?model=H100")
	wantStatus(t, p, http.StatusOK)
	if got := p.doc.Find(`[data-testid="depth-bids-level"]`).Length(); got != 2 {
		t.Errorf("bid levels on the page: %d", got)
	}
	if got := text(p, `[data-testid="depth-best-bid"]`); !strings.Contains(got, "2.000000") {
		t.Errorf("best bid on the page: %q", got)
	}
	if p.doc.Find(`[data-testid="chart-clearing-bar"]`).Length() == 0 || p.doc.Find(`[data-testid="depth-match"]`).Length() != 1 {
		t.Errorf("no clearing chart or matches on the page:\n%.2000s", p.body)
	}
	p = newBrowser(t, m).get("/market/depth?model=H9000")
	wantStatus(t, p, http.StatusUnprocessableEntity)
	if got := text(p, `[data-testid="error-model"]`); !strings.Contains(got, "Unknown GPU model") {
		t.Errorf("unknown model on the page: %q", got)
	}
	if p.doc.Find(`[data-testid="depth"]`).Length() != 0 {
		t.Error("a refused query still shows a book")
	}
}

// getJSON GETs a public API URL without a key and decodes the answer.
func getJSON(t *testing.T, u string, out any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	return resp.StatusCode
}
