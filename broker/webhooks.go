package broker

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
)

// Webhooks: the endpoints a user's alerts are posted to (alerts.go raises
// them), their signature, and the delivery worker.

// MaxWebhooks bounds a user's webhooks.
const MaxWebhooks = 5

// webhookGiveUp is how long a delivery is retried.
const webhookGiveUp = 24 * time.Hour

// AddWebhook registers an endpoint for the user's alerts and returns it
// with its signing secret. The URL must be http(s); outside dev mode one
// that names or resolves to a loopback, private or link-local address is
// refused (the marketplace must not be made to call into its own
// network), and the check is made again at every delivery's connection.
func (b *Broker) AddWebhook(ctx context.Context, userID, raw string) (*models.Webhook, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || len(raw) > 2000 {
		return nil, &highway.Error{Code: highway.EINVALID, Field: "url", Message: "Give an http:// or https:// URL (at most 2000 characters, no login in it)."}
	}
	if !b.cfg.AllowPrivateWebhooks {
		if err := publicHost(ctx, u.Hostname()); err != nil {
			return nil, err
		}
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return nil, err
	}
	h := &models.Webhook{UserID: userID, URL: u.String(), Secret: "whsec_" + hex.EncodeToString(secret[:])}
	if err := b.store.AddWebhook(ctx, h, MaxWebhooks); err != nil {
		return nil, err
	}
	return h, nil
}

// TestWebhook queues a test delivery to the user's webhook.
func (b *Broker) TestWebhook(ctx context.Context, userID, id string) (*models.WebhookDelivery, error) {
	h, err := b.store.Webhook(ctx, userID, id)
	if err != nil {
		return nil, err
	}
	pending, err := b.store.PendingDeliveries(ctx, h.ID, AlertTest)
	if err != nil {
		return nil, err
	}
	if pending >= maxPendingTests {
		return nil, &highway.Error{Code: highway.ECONFLICT, Message: "Earlier tests of this webhook are still being delivered; wait for them (the log below shows their outcome)."}
	}
	n := &models.Notification{ID: "test-" + models.NewID(), Kind: AlertTest, Text: "A test from Highway: this webhook works.", CreatedAt: b.now()}
	d := &models.WebhookDelivery{WebhookID: h.ID, UserID: userID, Kind: AlertTest, Body: alertBody(n)}
	if err := b.store.AddDelivery(ctx, d); err != nil {
		return nil, err
	}
	return d, nil
}

// publicHost refuses a host that is, or resolves to, an address the
// marketplace must not call: loopback, private, link-local, unspecified.
func publicHost(ctx context.Context, host string) error {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return badWebhook("A webhook cannot point at this marketplace's own machine.")
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return badWebhook("The webhook's host " + host + " does not resolve.")
	}
	for _, a := range addrs {
		if !publicAddr(a) {
			return badWebhook("The webhook's host " + host + " is a loopback, private or link-local address; it must be reachable on the internet.")
		}
	}
	return nil
}

func badWebhook(msg string) error {
	return &highway.Error{Code: highway.EINVALID, Field: "url", Message: msg}
}

// nonPublic are the ranges beyond the standard library's predicates that
// no webhook may reach: shared address space (carrier NAT, some clouds'
// metadata services), "this network", benchmarking, reserved and
// documentation ranges, and the IPv6 translation prefixes that can carry
// a private IPv4 address inside.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), netip.MustParsePrefix("64:ff9b:1::/48"), netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("2001::/32"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("100::/64"),
}

func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsUnspecified() || a.IsMulticast() || a.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// webhookClient posts deliveries; outside dev mode its dialer refuses a
// non-public address at connection time, so a host that resolved to a
// public address when registered cannot be re-pointed inward.
func (b *Broker) webhookClient() *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if !b.cfg.AllowPrivateWebhooks {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !publicAddr(ap.Addr()) {
				return fmt.Errorf("webhook address %s is not public", address)
			}
			return nil
		}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, Proxy: nil,
		MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// SignWebhook is the Highway-Signature header of a delivery: the unix
// time and the HMAC-SHA256, keyed by the webhook's secret, of
// "<time>.<body>". A receiver recomputes it and refuses a time far from
// its own clock, so a captured delivery cannot be replayed later.
func SignWebhook(secret string, at int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(at, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "t=" + strconv.FormatInt(at, 10) + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// deliverDue makes one attempt at each due delivery.
func (b *Broker) deliverDue(ctx context.Context, client *http.Client) {
	due, err := b.store.DueDeliveries(ctx, b.now(), 50)
	if err != nil {
		b.log.Error("list due webhook deliveries", "err", err)
		return
	}
	// One worker per webhook, at most webhookWorkers at once: a webhook
	// that never answers delays only its own deliveries, and after one
	// failure the rest of its queue waits for the next pass, so a receiver
	// that is down is not sent its whole queue each time.
	byHook := map[string][]*models.WebhookDelivery{}
	var order []string
	for i := range due {
		d := &due[i]
		if _, ok := byHook[d.WebhookID]; !ok {
			order = append(order, d.WebhookID)
		}
		byHook[d.WebhookID] = append(byHook[d.WebhookID], d)
	}
	sem := make(chan struct{}, webhookWorkers)
	var wg sync.WaitGroup
	for _, id := range order {
		ds := byHook[id]
		h, err := b.store.Webhook(ctx, ds[0].UserID, id)
		if err != nil {
			continue // deleted meanwhile: its deliveries went with it
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			for _, d := range ds {
				b.attempt(ctx, client, h, d)
				if err := b.store.RecordDelivery(ctx, d); err != nil {
					b.log.Error("record webhook delivery", "delivery", d.ID, "err", err)
				}
				if d.Status == models.DeliveryPending {
					return // it failed: the rest wait for its retry
				}
			}
		}()
	}
	wg.Wait()
}

// webhookWorkers bounds the webhooks posted to at once.
const webhookWorkers = 8

// maxPendingTests bounds a webhook's queued test deliveries: "send test"
// is not a way to make the marketplace post at will.
const maxPendingTests = 3

// attempt posts d to h once and sets its outcome: delivered on a 2xx;
// otherwise retried after 30 s, 1 min, 2 min, … (at most an hour apart)
// until a day after it was queued, then failed.
func (b *Broker) attempt(ctx context.Context, client *http.Client, h *models.Webhook, d *models.WebhookDelivery) {
	now := b.now()
	d.Attempts++
	d.LastCode, d.LastError = 0, ""
	body := []byte(d.Body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "Highway-Webhooks/1")
		req.Header.Set("Highway-Event", d.Kind)
		req.Header.Set("Highway-Delivery", d.ID)
		req.Header.Set("Highway-Signature", SignWebhook(h.Secret, now.Unix(), body))
		var resp *http.Response
		if resp, err = client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			d.LastCode = int64(resp.StatusCode)
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				d.Status = models.DeliveryDelivered
				return
			}
		}
	}
	if err != nil {
		d.LastError = err.Error()
		if len(d.LastError) > 300 {
			d.LastError = d.LastError[:300]
		}
	}
	wait := b.cfg.WebhookRetryBase << min(d.Attempts-1, 20)
	wait = min(wait, time.Hour)
	d.NextAt = now.Add(wait)
	if d.NextAt.Sub(d.CreatedAt) > webhookGiveUp {
		d.Status = models.DeliveryFailed
	}
}
