package main

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

// The market pages against a marketplace without a chain: what a visitor
// and a buyer see before anything can be leased. The leased path is
// covered by TestEndToEnd.

func TestMarketPageEmpty(t *testing.T) {
	m := startServer(t, dbtest.SQLiteDSN(t), accounts.Config{})
	b := newBrowser(t, m)
	p := b.get("/market")
	wantStatus(t, p, http.StatusOK)
	if p.doc.Find(`[data-testid="market-summary"]`).Length() != 1 {
		t.Fatalf("no market summary:\n%.2000s", p.body)
	}
	if got := text(p, `[data-testid="h100-equivalents"]`); got != "0.000" {
		t.Errorf("H100-equivalents = %q, want 0.000", got)
	}
	if got := text(p, `[data-testid="machines-online"]`); got != "0" {
		t.Errorf("machines online = %q", got)
	}
	if p.doc.Find(`[data-testid="offers-none"]`).Length() != 1 {
		t.Error("an empty market does not say there are no offers")
	}
	if p.doc.Find(`nav.main a[href="/market"]`).Length() != 1 {
		t.Error("no Market link in the navigation")
	}
	// The live script is served content-hashed, as JavaScript.
	src, _ := p.doc.Find(`script[src^="/static/js/live."]`).Attr("src")
	if src == "" || src == "/static/js/live.js" {
		t.Fatalf("live script src = %q, want a content-hashed path", src)
	}
	js := b.get(src)
	wantStatus(t, js, http.StatusOK)
	if ct := js.header.Get("Content-Type"); !strings.Contains(ct, "javascript") {
		t.Errorf("live.js Content-Type = %q", ct)
	}
}

func TestMarketFilter(t *testing.T) {
	m := startServer(t, dbtest.SQLiteDSN(t), accounts.Config{})
	b := newBrowser(t, m)

	t.Run("bad input", func(t *testing.T) {
		cases := []struct{ query, field, msg string }{
			{"min_vram_gib=lots", "min_vram_gib", "non-negative integer"},
			{"count=-1", "count", "non-negative integer"},
			{"model=NOPE", "model", "Unknown GPU model"},
			{"region=mars", "region", "Unknown region"},
			{"sort=cheapest", "sort", "price, rtt, reliability or price_per_h100"},
		}
		for _, tc := range cases {
			p := b.get("/market?" + tc.query)
			wantStatus(t, p, http.StatusUnprocessableEntity)
			if got := text(p, `[data-testid="error-`+tc.field+`"]`); !strings.Contains(got, tc.msg) {
				t.Errorf("%s: error beside %s = %q, want %q", tc.query, tc.field, got, tc.msg)
			}
			if p.doc.Find(`[data-testid="market-summary"]`).Length() != 1 {
				t.Errorf("%s: the page lost its summary", tc.query)
			}
		}
		// What was typed stays in the box.
		p := b.get("/market?min_vram_gib=lots")
		if got, _ := p.doc.Find(`input[name="min_vram_gib"]`).Attr("value"); got != "lots" {
			t.Errorf("typed value not kept: %q", got)
		}
		// A parameter the form does not show is reported over the form.
		p = b.get("/market?cursor=abc")
		wantStatus(t, p, http.StatusUnprocessableEntity)
		if got := text(p, `[data-testid="form-error"]`); !strings.Contains(got, "cursor") {
			t.Errorf("cursor error = %q", got)
		}
	})

	t.Run("round trip", func(t *testing.T) {
		q := url.Values{"model": {"H100"}, "region": {"local"}, "sort": {"rtt"}, "max_price": {"2500000"},
			"count": {"2"}, "max_rtt_ms": {"80"}, "min_reliability_bps": {"9900"}, "min_vram_gib": {"40"}}
		p := b.get("/market?" + q.Encode())
		wantStatus(t, p, http.StatusOK)
		for name, want := range map[string]string{"model": "H100", "region": "local", "sort": "rtt"} {
			if got, _ := p.doc.Find(`select[name="` + name + `"] option[selected]`).Attr("value"); got != want {
				t.Errorf("select %s = %q, want %q", name, got, want)
			}
		}
		for _, name := range []string{"max_price", "count", "max_rtt_ms", "min_reliability_bps", "min_vram_gib"} {
			if got, _ := p.doc.Find(`input[name="` + name + `"]`).Attr("value"); got != q.Get(name) {
				t.Errorf("input %s = %q, want %q", name, got, q.Get(name))
			}
		}
		// The live fragment re-asks the same query.
		live, _ := p.doc.Find(`[data-testid="offers"]`).Attr("data-live")
		lu, err := url.Parse(live)
		if err != nil || lu.Path != "/market" || lu.Query().Get("fragment") != "1" {
			t.Fatalf("data-live = %q", live)
		}
		for k := range q {
			if lu.Query().Get(k) != q.Get(k) {
				t.Errorf("fragment URL drops %s: %q", k, live)
			}
		}
		f := b.get(live)
		wantStatus(t, f, http.StatusOK)
		if strings.Contains(f.body, "<html") || f.doc.Find(`[data-testid="offers-none"]`).Length() != 1 {
			t.Errorf("fragment is not just the table:\n%.800s", f.body)
		}
		// The same query is a valid API query.
		wantStatus(t, b.get("/api/v1/offers?"+q.Encode()), http.StatusOK)
	})
}

func TestMarketEventsStream(t *testing.T) {
	m := startServer(t, dbtest.SQLiteDSN(t), accounts.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.URL()+"/market/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	// Closing before the server shuts down: an open stream would hold
	// the graceful shutdown.
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type = %q", ct)
	}
	// The stream opens at once (no event needed) with its retry hint.
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "retry: ") {
		t.Fatalf("first line %q, %v", line, err)
	}
}

// A live page names the market generation it was read at, and a stream
// opened from it reports a change that landed in between at once: without
// that, a machine verified between the render and the EventSource opening
// stayed off an open /market page until the next change (a CI flake).
func TestMarketEventsSinceRender(t *testing.T) {
	m := startServer(t, dbtest.SQLiteDSN(t), accounts.Config{})
	p := newBrowser(t, m).get("/market")
	wantStatus(t, p, http.StatusOK)
	since, ok := p.doc.Find(`script[data-since]`).Attr("data-since")
	if !ok {
		t.Fatalf("the market page does not name its generation:\n%.800s", p.body)
	}
	// events reads the stream from since until it has seen the first
	// event or the short wait is over.
	events := func(since string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.URL()+"/market/events?since="+since, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got strings.Builder
		r := bufio.NewReader(resp.Body)
		for !strings.Contains(got.String(), "event: changed") {
			line, err := r.ReadString('\n')
			if err != nil {
				break // the wait is over
			}
			got.WriteString(line)
		}
		return got.String()
	}
	if got := events(since); strings.Contains(got, "event: changed") {
		t.Fatalf("a stream from the current generation reported a change:\n%s", got)
	}

	// The market changes after the render, before the stream opens.
	b := newBrowser(t, m)
	wantStatus(t, b.signup("prov@example.com", "a long passphrase", "provider"), http.StatusSeeOther)
	u, err := m.Store.UserByEmail(context.Background(), "prov@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Market.SetSuspended(context.Background(), u.ID, true); err != nil {
		t.Fatal(err)
	}
	if got := events(since); !strings.Contains(got, "event: changed") {
		t.Fatalf("a change after the render was not reported to a stream opened from it:\n%s", got)
	}
	// A fresh render is current again.
	p = newBrowser(t, m).get("/market")
	if now, _ := p.doc.Find(`script[data-since]`).Attr("data-since"); now == since {
		t.Fatalf("the generation did not move with the change (%s)", now)
	}
}

func TestOrderPagesWithoutChain(t *testing.T) {
	m := startServer(t, dbtest.SQLiteDSN(t), accounts.Config{})
	ctx := context.Background()
	buyer := newBrowser(t, m)
	wantStatus(t, buyer.signup("buyer@example.com", "a long passphrase", "buyer"), http.StatusSeeOther)

	// A visitor is sent to log in.
	p := newBrowser(t, m).get("/orders/new")
	wantStatus(t, p, http.StatusSeeOther)
	if loc := p.header.Get("Location"); !strings.HasPrefix(loc, "/login?next=") {
		t.Fatalf("visitor sent to %q", loc)
	}

	p = buyer.get("/orders/new?model=H100&count=2&hours=3&max_price_per_gpu_hour=1")
	wantStatus(t, p, http.StatusOK)
	if got := text(p, `[data-testid="escrow-unavailable"]`); !strings.Contains(got, "not connected to a chain") {
		t.Errorf("escrow panel = %q, want the plain no-chain message", got)
	}
	// 2 GPUs × 1 HWY × 3 h, whatever the epoch length.
	if got := text(p, `[data-testid="escrow-needed"]`); !strings.Contains(got, "6.000000 HWY") || !strings.Contains(got, "6000000 uhwy") {
		t.Errorf("escrow needed = %q", got)
	}

	order := url.Values{"type": {"fok"}, "model": {"H100"}, "count": {"1"}, "max_price_per_gpu_hour": {"1"},
		"region": {"local"}, "hours": {"1"}, "command": {"echo hi"}}
	p = buyer.submit("/orders/new", "/orders", order)
	wantStatus(t, p, http.StatusConflict)
	if got := text(p, `[data-testid="form-error"]`); !strings.Contains(got, "not connected to a chain") {
		t.Errorf("form error = %q", got)
	}
	if got := text(p, `[data-testid="order-command"]`); got != "echo hi" {
		t.Errorf("command not kept: %q", got)
	}

	cases := []struct {
		name, key, value, field, msg string
	}{
		{"no hours", "hours", "0", "hours", "at least 1"},
		{"count not a number", "count", "two", "count", "whole number"},
		{"no command", "command", "", "command", "command"},
		{"command and image", "image", "ghcr.io/x/y:1", "command", "one of the two"},
		{"image like a flag", "image", "--privileged", "image", "must not start with '-'"},
		{"no price", "max_price_per_gpu_hour", "", "max_price_per_gpu_hour", "in HWY"},
		{"seven decimals", "max_price_per_gpu_hour", "2.4900001", "max_price_per_gpu_hour", "at most 6 decimals"},
		{"price zero", "max_price_per_gpu_hour", "0", "max_price_per_gpu_hour", "above 0"},
		{"bad type", "type", "later", "type", "Order type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := url.Values{}
			for k, v := range order {
				f[k] = v
			}
			f.Set(tc.key, tc.value)
			if tc.name == "image like a flag" {
				f.Del("command") // an image alone, but a bad one
			}
			p := buyer.submit("/orders/new", "/orders", f)
			wantStatus(t, p, http.StatusUnprocessableEntity)
			if got := text(p, `[data-testid="error-`+tc.field+`"]`); !strings.Contains(got, tc.msg) {
				t.Errorf("error beside %s = %q, want %q", tc.field, got, tc.msg)
			}
		})
	}
	if os, _ := m.Store.OrdersOf(ctx, mustUser(t, m, "buyer@example.com").ID, 10); len(os) != 0 {
		t.Fatalf("orders stored without a chain: %d", len(os))
	}
}

func mustUser(t *testing.T, m *Main, email string) *models.User {
	t.Helper()
	u, err := m.Store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestOrderAndLeasePagesAccess(t *testing.T) {
	m := startServer(t, dbtest.SQLiteDSN(t), accounts.Config{})
	ctx := context.Background()
	buyer, stranger, prov := newBrowser(t, m), newBrowser(t, m), newBrowser(t, m)
	wantStatus(t, buyer.signup("owner@example.com", "a long passphrase", "buyer"), http.StatusSeeOther)
	wantStatus(t, stranger.signup("stranger@example.com", "a long passphrase", "buyer"), http.StatusSeeOther)
	wantStatus(t, prov.signup("prov@example.com", "a long passphrase", "provider"), http.StatusSeeOther)
	owner, provider := mustUser(t, m, "owner@example.com"), mustUser(t, m, "prov@example.com")

	// Rows as the broker writes them; without a chain no page can create them.
	o := &models.Order{ID: models.NewID(), BuyerID: owner.ID, Type: "fok", Model: "H100", GPUs: 1, MaxPrice: 1_500_000,
		Region: "local", MaxRTTms: 100, Hours: 2, WorkloadJSON: `{"command":"echo hi"}`, Status: models.OrderFailed,
		Failure: "No capacity within your limits right now."}
	if _, err := m.Store.CreateOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	p := buyer.get("/orders/" + o.ID)
	wantStatus(t, p, http.StatusOK)
	if got := text(p, `[data-testid="order-status"]`); got != "failed" {
		t.Errorf("order status = %q", got)
	}
	if got := text(p, `[data-testid="order-failure"]`); !strings.Contains(got, "No capacity") {
		t.Errorf("failure = %q", got)
	}
	wantStatus(t, stranger.get("/orders/"+o.ID), http.StatusNotFound)
	wantStatus(t, prov.get("/orders/"+o.ID), http.StatusNotFound)
	wantStatus(t, buyer.get("/orders/no-such-order"), http.StatusNotFound)
	if f := buyer.get("/orders/" + o.ID + "?fragment=1"); f.status != http.StatusOK || strings.Contains(f.body, "<html") {
		t.Errorf("order fragment: %d %.300s", f.status, f.body)
	}

	l := &models.Lease{ID: models.NewID(), ChainLeaseID: 7, OrderID: o.ID, BuyerID: owner.ID, ProviderID: provider.ID,
		MachineID: "m-1", Model: "H100", GPUs: 1, PricePerHour: 1_500_000, PricePerEpoch: "1500000", EpochsTotal: 2,
		Status: models.LeaseActive, WorkloadStatus: "running", CreateTx: "ABCDEF", Remaining: "3000000", Pending: "0",
		Frozen: "0", Paid: "1500000", Refunded: "0", Fees: "0", EndsAt: time.Now().Add(time.Hour)}
	if err := m.Store.CreateLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := m.Store.AppendLogs(ctx, []models.LeaseLog{{LeaseID: l.ID, Seq: 1, At: time.Now(), Stream: "stdout", Text: "hello from the GPU"}}); err != nil {
		t.Fatal(err)
	}
	p = buyer.get("/leases/" + l.ID)
	wantStatus(t, p, http.StatusOK)
	for sel, want := range map[string]string{
		`[data-testid="lease-status"]`:     "active",
		`[data-testid="lease-chain-id"]`:   "#7",
		`[data-testid="lease-create-tx"]`:  "ABCDEF",
		`[data-testid="escrow-remaining"]`: "3.000000 HWY",
		`[data-testid="escrow-paid"]`:      "1.500000 HWY",
		`[data-testid="lease-logs"]`:       "hello from the GPU",
	} {
		if got := text(p, sel); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want %q", sel, got, want)
		}
	}
	if p.doc.Find(`[data-testid="lease-close"]`).Length() != 1 || p.doc.Find(`[data-testid="lease-dispute"]`).Length() != 1 {
		t.Error("the buyer has no close or dispute form")
	}
	// The provider sees the lease but cannot act on it; a stranger sees nothing.
	p = prov.get("/leases/" + l.ID)
	wantStatus(t, p, http.StatusOK)
	if p.doc.Find(`[data-testid="lease-close"]`).Length() != 0 {
		t.Error("the provider is offered the buyer's close button")
	}
	wantStatus(t, prov.submit("/leases/"+l.ID, "/leases/"+l.ID+"/close", url.Values{}), http.StatusNotFound)
	wantStatus(t, stranger.get("/leases/"+l.ID), http.StatusNotFound)
	wantStatus(t, stranger.submit("/market", "/leases/"+l.ID+"/disputes", url.Values{"statement": {"mine now"}}), http.StatusNotFound)

	// Extending: the buyer's form; a length that is not a number, or out
	// of range, is refused beside the field; the provider cannot extend.
	if buyer.get("/leases/"+l.ID).doc.Find(`[data-testid="lease-extend"]`).Length() != 1 {
		t.Error("the buyer has no extend form")
	}
	for hours, want := range map[string]string{"two": "whole number", "0": "1 to 720 hours", "721": "1 to 720 hours"} {
		p = buyer.submit("/leases/"+l.ID, "/leases/"+l.ID+"/extend", url.Values{"hours": {hours}})
		wantStatus(t, p, http.StatusUnprocessableEntity)
		if got := text(p, `[data-testid="extend-error"]`); !strings.Contains(got, want) {
			t.Errorf("extend by %q: error %q, want %q", hours, got, want)
		}
		if got, _ := p.doc.Find(`[data-testid="extend-hours"]`).Attr("value"); got != hours {
			t.Errorf("extend by %q: the field now holds %q", hours, got)
		}
	}
	wantStatus(t, prov.submit("/leases/"+l.ID, "/leases/"+l.ID+"/extend", url.Values{"hours": {"1"}}), http.StatusNotFound)

	// Auto-extend: off at first; bad hours or floors are refused beside
	// their field and change nothing; a good setting is saved and shown,
	// and off again with 0 hours. Only the buyer may set it.
	if got := text(buyer.get("/leases/"+l.ID), `[data-testid="auto-extend-state"]`); !strings.HasPrefix(got, "Off") {
		t.Errorf("auto-extend state at first: %q", got)
	}
	for _, c := range []struct{ hours, floor, field, want string }{
		{"two", "5", "auto-hours-error", "whole number"},
		{"721", "5", "auto-hours-error", "1 to 720 hours"},
		{"-1", "5", "auto-hours-error", "1 to 720 hours"},
		{"2", "1.0000001", "auto-floor-error", "six decimals"},
		{"2", "-3", "auto-floor-error", "HWY"},
	} {
		p = buyer.submit("/leases/"+l.ID, "/leases/"+l.ID+"/auto-extend", url.Values{"hours": {c.hours}, "floor": {c.floor}})
		wantStatus(t, p, http.StatusUnprocessableEntity)
		if got := text(p, `[data-testid="`+c.field+`"]`); !strings.Contains(got, c.want) {
			t.Errorf("auto-extend %q/%q: %s %q, want %q", c.hours, c.floor, c.field, got, c.want)
		}
		if got, _ := p.doc.Find(`[data-testid="auto-floor"]`).Attr("value"); got != c.floor {
			t.Errorf("auto-extend %q/%q: the floor field now holds %q", c.hours, c.floor, got)
		}
	}
	if got, _ := m.Store.LeaseByID(ctx, l.ID); got.AutoExtendHours != 0 || got.AutoExtendFloor != 0 {
		t.Fatalf("refused settings were saved: %+v", got)
	}
	wantStatus(t, prov.submit("/leases/"+l.ID, "/leases/"+l.ID+"/auto-extend", url.Values{"hours": {"2"}, "floor": {"5"}}), http.StatusNotFound)
	wantStatus(t, buyer.submit("/leases/"+l.ID, "/leases/"+l.ID+"/auto-extend", url.Values{"hours": {"2"}, "floor": {"5.5"}}), http.StatusSeeOther)
	if got, _ := m.Store.LeaseByID(ctx, l.ID); got.AutoExtendHours != 2 || got.AutoExtendFloor != 5_500_000 {
		t.Fatalf("auto-extend saved as %d h, floor %d uhwy; want 2 h, 5500000", got.AutoExtendHours, got.AutoExtendFloor)
	}
	p = buyer.get("/leases/" + l.ID)
	if got := text(p, `[data-testid="auto-extend-state"]`); !strings.Contains(got, "On: 2 h") || !strings.Contains(got, "5.500000") {
		t.Errorf("auto-extend state: %q", got)
	}
	// Without a chain the wallet cannot be read: the page says it will not extend, and why.
	if got := text(p, `[data-testid="lease-will-extend"]`); !strings.Contains(got, "will not auto-extend") {
		t.Errorf("outlook without a chain: %q", got)
	}
	wantStatus(t, buyer.submit("/leases/"+l.ID, "/leases/"+l.ID+"/auto-extend", url.Values{"hours": {"0"}}), http.StatusSeeOther)
	if got, _ := m.Store.LeaseByID(ctx, l.ID); got.AutoExtendHours != 0 {
		t.Fatalf("auto-extend still on: %+v", got)
	}

	// A dispute without a statement is refused beside the box.
	p = buyer.submit("/leases/"+l.ID, "/leases/"+l.ID+"/disputes", url.Values{"statement": {"   "}})
	wantStatus(t, p, http.StatusUnprocessableEntity)
	if got := text(p, `[data-testid="error-statement"]`); !strings.Contains(got, "went wrong") {
		t.Errorf("statement error = %q", got)
	}
}

func TestWalletPageWithoutChain(t *testing.T) {
	m := startServer(t, dbtest.SQLiteDSN(t), accounts.Config{})
	b := newBrowser(t, m)
	wantStatus(t, b.signup("w@example.com", "a long passphrase", "buyer"), http.StatusSeeOther)
	p := b.get("/wallet")
	wantStatus(t, p, http.StatusOK)
	if got := text(p, `[data-testid="wallet-unavailable"]`); !strings.Contains(got, "not connected to a chain") {
		t.Errorf("wallet page = %q", got)
	}
	if p.doc.Find(`nav.main a[href="/wallet"]`).Length() != 1 {
		t.Error("no Wallet link in the navigation")
	}
	wantStatus(t, b.submit("/wallet", "/wallet/faucet", url.Values{}), http.StatusNotFound)
	// Without a chain there is no withdraw form; a hand-made post is
	// refused and the page says why.
	p = b.submit("/wallet", "/wallet/withdraw", url.Values{"to": {"hwy1nothing"}, "amount": {"5"}})
	if p.status < 400 || !strings.Contains(text(p, `[data-testid="wallet-unavailable"]`), "not connected to a chain") {
		t.Errorf("withdraw without a chain: %d %.1500s", p.status, p.body)
	}
	if p.doc.Find(`[data-testid="withdraw-form"]`).Length() != 0 {
		t.Error("withdraw form shown without a chain")
	}
}
