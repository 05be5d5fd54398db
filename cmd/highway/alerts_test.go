package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

// receiver is a webhook endpoint that checks every delivery's signature
// and fails the first attempt of each, so every delivery is retried once.
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	secret string
	seen   map[string]int // delivery id → attempts
	kinds  []string       // the kinds delivered (2xx)
	bad    int            // deliveries with a bad signature
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	sig := req.Header.Get("Highway-Signature")
	ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
	at, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig != broker.SignWebhook(r.secret, at, body) || time.Since(time.Unix(at, 0)).Abs() > 5*time.Minute {
		r.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := req.Header.Get("Highway-Delivery")
	r.seen[id]++
	if r.seen[id] == 1 {
		w.WriteHeader(http.StatusServiceUnavailable) // the first attempt fails
		return
	}
	var n struct{ Kind string }
	_ = json.Unmarshal(body, &n)
	if n.Kind != req.Header.Get("Highway-Event") {
		r.t.Errorf("body kind %q, header %q", n.Kind, req.Header.Get("Highway-Event"))
	}
	r.kinds = append(r.kinds, n.Kind)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) delivered() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.kinds...)
}

// TestAlertsAndWebhooks: a webhook is added from the alerts page (a bad
// URL refused beside the field), a lease about to end raises an alert
// under the bell and posts it, signed, to the webhook, which fails the
// first attempt and gets the retry; the delivery log says so; "send
// test" delivers a test; the low-balance threshold is validated.
func TestAlertsAndWebhooks(t *testing.T) {
	m := startServerAt(t, "127.0.0.1:0", dbtest.SQLiteDSN(t), accounts.Config{}, func(m *Main) {
		m.Config.DevMode = true // a local receiver
		m.Broker = broker.Config{WebhookEvery: 50 * time.Millisecond, WebhookRetryBase: 200 * time.Millisecond, AlertEvery: 100 * time.Millisecond}
	})
	ctx := context.Background()
	buyer := newBrowser(t, m)
	wantStatus(t, buyer.signup("buyer@example.com", "a long passphrase", "buyer"), http.StatusSeeOther)
	u := mustUser(t, m, "buyer@example.com")

	rcv := &receiver{t: t, seen: map[string]int{}}
	hook := httptest.NewServer(rcv)
	defer hook.Close()

	p := buyer.submit("/alerts", "/alerts/webhooks", url.Values{"url": {"ftp://example.com/x"}})
	wantStatus(t, p, http.StatusUnprocessableEntity)
	if got := text(p, `[data-testid="error-url"]`); !strings.Contains(got, "http://") {
		t.Errorf("a bad URL: %q", got)
	}
	wantStatus(t, buyer.submit("/alerts", "/alerts/webhooks", url.Values{"url": {hook.URL + "/highway"}}), http.StatusSeeOther)
	p = buyer.get("/alerts")
	secret := text(p, `[data-testid="webhook-secret"]`)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret %q", secret)
	}
	rcv.mu.Lock()
	rcv.secret = secret
	rcv.mu.Unlock()

	for _, v := range []string{"lots", "-1", "1.0000001"} {
		p = buyer.submit("/alerts", "/alerts/balance", url.Values{"balance_below": {v}})
		wantStatus(t, p, http.StatusUnprocessableEntity)
		if got := text(p, `[data-testid="error-balance_below"]`); !strings.Contains(got, "HWY") {
			t.Errorf("threshold %q: %q", v, got)
		}
	}
	wantStatus(t, buyer.submit("/alerts", "/alerts/balance", url.Values{"balance_below": {"25.5"}}), http.StatusSeeOther)
	if got := mustUser(t, m, "buyer@example.com"); got.AlertBalanceBelow != 25_500_000 {
		t.Errorf("threshold saved as %d uhwy", got.AlertBalanceBelow)
	}

	// A lease that ends in 30 minutes: one alert, under the bell and to the
	// webhook (retried once), however many scans see it.
	l := &models.Lease{ID: models.NewID(), ChainLeaseID: 1, OrderID: "o", BuyerID: u.ID, ProviderID: u.ID, MachineID: "m", Model: "H100", GPUs: 1,
		PricePerHour: 1, PricePerEpoch: "1", Status: models.LeaseActive, Remaining: "0", Pending: "0", Frozen: "0", Paid: "0", Refunded: "0",
		Fees: "0", EndsAt: time.Now().Add(30 * time.Minute)}
	if err := m.Store.CreateLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the lease-ending alert delivered", 10*time.Second, func() bool { return len(rcv.delivered()) == 1 })
	if got := text(buyer.get("/market"), `[data-testid="bell-count"]`); got != "1" {
		t.Errorf("bell count %q, want 1", got)
	}
	p = buyer.get("/alerts")
	if got := text(p, `[data-testid="notification"]`); !strings.Contains(got, "lease_ending") || !strings.Contains(got, "ends in") {
		t.Errorf("the alert: %q", got)
	}
	if got := text(p, `[data-testid="delivery-status"]`); got != "delivered" {
		t.Errorf("delivery status %q", got)
	}
	if buyer.get("/market").doc.Find(`[data-testid="bell-count"]`).Length() != 0 {
		t.Error("the bell still counts alerts already listed")
	}
	time.Sleep(300 * time.Millisecond) // more scans: still one alert
	if ns, _ := m.Store.Notifications(ctx, u.ID, 10); len(ns) != 1 {
		t.Errorf("%d notifications for one lease ending", len(ns))
	}

	// Send test.
	action, ok := p.doc.Find(`[data-testid="webhook"] form`).First().Attr("action")
	if !ok || !strings.HasSuffix(action, "/test") {
		t.Fatalf("no test form: %q", action)
	}
	wantStatus(t, buyer.submit("/alerts", action, url.Values{}), http.StatusSeeOther)
	waitFor(t, "the test delivered", 10*time.Second, func() bool { return len(rcv.delivered()) == 2 })
	if got := rcv.delivered(); got[0] != broker.AlertLeaseEnding || got[1] != broker.AlertTest {
		t.Errorf("delivered %v", got)
	}
	// "Send test" is not a way to make the marketplace post at will: a
	// webhook that never answers holds at most three pending tests.
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer dead.Close()
	wantStatus(t, buyer.submit("/alerts", "/alerts/webhooks", url.Values{"url": {dead.URL}}), http.StatusSeeOther)
	hooks, err := m.Store.Webhooks(ctx, u.ID)
	if err != nil || len(hooks) != 2 {
		t.Fatalf("webhooks %+v %v", hooks, err)
	}
	testDead := "/alerts/webhooks/" + hooks[1].ID + "/test"
	for i := 0; i < 3; i++ {
		wantStatus(t, buyer.submit("/alerts", testDead, url.Values{}), http.StatusSeeOther)
	}
	wantStatus(t, buyer.submit("/alerts", testDead, url.Values{}), http.StatusConflict)

	rcv.mu.Lock()
	for id, n := range rcv.seen {
		if n != 2 {
			t.Errorf("delivery %s attempted %d times, want 2 (one failure, one retry)", id, n)
		}
	}
	if rcv.bad != 0 {
		t.Errorf("%d deliveries with a bad signature", rcv.bad)
	}
	rcv.mu.Unlock()
}
