package broker

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/highway-compute/highway/models"
)

// The signature is HMAC-SHA256 over "<unix>.<body>" keyed by the secret,
// as a receiver recomputes it.
func TestSignWebhook(t *testing.T) {
	m := hmac.New(sha256.New, []byte("whsec_k"))
	m.Write([]byte(`1764748800.{"kind":"test"}`))
	want := "t=1764748800,v1=" + hex.EncodeToString(m.Sum(nil))
	if got := SignWebhook("whsec_k", 1764748800, []byte(`{"kind":"test"}`)); got != want {
		t.Fatalf("%s, want %s", got, want)
	}
	if SignWebhook("whsec_other", 1764748800, []byte(`{"kind":"test"}`)) == want {
		t.Fatal("another secret signs the same")
	}
}

// Outside dev mode a webhook may not name or reach this network.
func TestWebhookAddressesArePublic(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "::1", "10.1.2.3", "192.168.0.1", "172.16.5.5", "169.254.169.254", "0.0.0.0", "fe80::1", "::ffff:127.0.0.1",
		"100.100.100.200", "198.18.0.1", "240.0.0.1", "64:ff9b::a00:1", "2002:a00:1::1"} {
		if publicAddr(netip.MustParseAddr(a)) {
			t.Errorf("%s counted as public", a)
		}
	}
	for _, a := range []string{"1.1.1.1", "2606:4700:4700::1111"} {
		if !publicAddr(netip.MustParseAddr(a)) {
			t.Errorf("%s counted as private", a)
		}
	}
	for _, h := range []string{"localhost", "127.0.0.1", "10.0.0.1", "app.localhost"} {
		if publicHost(context.Background(), h) == nil {
			t.Errorf("host %s accepted", h)
		}
	}
	// And at connection time, whatever the name resolved to before.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer srv.Close()
	b := &Broker{cfg: Config{WebhookRetryBase: time.Second}, now: time.Now}
	d := &models.WebhookDelivery{ID: "d", Kind: "test", Body: "{}", CreatedAt: time.Now()}
	b.attempt(context.Background(), b.webhookClient(), &models.Webhook{URL: srv.URL, Secret: "s"}, d)
	if d.Status == models.DeliveryDelivered || d.LastError == "" {
		t.Fatalf("a delivery reached a loopback address: %+v", d)
	}
}

// A failed delivery waits 1, 2, 4 … retry bases (at most an hour) and is
// given up a day after it was queued.
func TestWebhookBackoff(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	defer srv.Close()
	b := &Broker{cfg: Config{WebhookRetryBase: 30 * time.Second, AllowPrivateWebhooks: true}, now: func() time.Time { return now }}
	client := b.webhookClient()
	h := &models.Webhook{URL: srv.URL, Secret: "s"}
	d := &models.WebhookDelivery{ID: "d", Kind: "test", Body: "{}", Status: models.DeliveryPending, CreatedAt: now}
	for i, want := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute} {
		b.attempt(context.Background(), client, h, d)
		if d.Status != models.DeliveryPending || d.LastCode != 500 || d.NextAt.Sub(now) != want || d.Attempts != int64(i+1) {
			t.Fatalf("attempt %d: %+v, want the next in %s", i+1, d, want)
		}
	}
	for range 10 {
		b.attempt(context.Background(), client, h, d)
	}
	if d.NextAt.Sub(now) != time.Hour {
		t.Fatalf("the wait grew to %s, want at most an hour", d.NextAt.Sub(now))
	}
	now = now.Add(24 * time.Hour)
	b.attempt(context.Background(), client, h, d)
	if d.Status != models.DeliveryFailed {
		t.Fatalf("after a day: %+v", d)
	}
}
