package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/handlers"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/protocol"
)

// The hostile-input suite replays, against the real server, the attacks
// an attacker with a browser, a scanner and a script tried on `make dev`
// (docs/reliability.md has the table). This part needs no chain; the
// money paths (faucet, withdrawals, idempotent orders) are in
// TestHostileInputOnChain.

// hostileServer is a marketplace with the production limits (tests
// normally lift the API's) that believes X-Forwarded-For from loopback,
// so each browser can come from an address of its own.
func hostileServer(t *testing.T, acct accounts.Config) *Main {
	t.Helper()
	return startServerAt(t, "127.0.0.1:0", dbtest.SQLiteDSN(t), acct, func(m *Main) {
		m.API = handlers.APILimits{}
		m.Config.TrustedProxies = "127.0.0.1"
	})
}

// rawGet is a GET with headers, answering status, headers and body.
func rawGet(t *testing.T, target string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func TestHostileInput(t *testing.T) {
	m := hostileServer(t, accounts.Config{SlowLaneDelay: 20 * time.Millisecond})
	ctx := context.Background()
	svc := accounts.New(m.Store, accounts.Config{Hash: cheapHash})

	t.Run("open redirect", func(t *testing.T) {
		if _, _, err := svc.Signup(ctx, accounts.SignupInput{Email: "redirect@example.com", Password: "a long passphrase", Buyer: true}, "1.1.1.1", "t"); err != nil {
			t.Fatal(err)
		}
		for _, next := range []string{"/\t/evil.example/", "/\n/evil.example", " //evil.example", "/\\evil.example", "https://evil.example", "//evil.example"} {
			b := newBrowser(t, m)
			b.from = "192.0.2.10"
			// The login page carries only a safe next...
			p := b.get("/login?next=" + url.QueryEscape(next))
			if v, _ := p.doc.Find(`input[name="next"]`).Attr("value"); v != "/account" {
				t.Fatalf("next %q: the login form carries %q", next, v)
			}
			// ...and a crafted form post is not followed either.
			p = b.submit("/login", "/login", url.Values{"email": {"redirect@example.com"}, "password": {"a long passphrase"}, "next": {next}})
			if loc := p.header.Get("Location"); p.status != http.StatusSeeOther || loc != "/account" {
				t.Fatalf("next %q: %d Location %q, want 303 /account", next, p.status, loc)
			}
		}
	})

	t.Run("cursor overflow", func(t *testing.T) {
		for _, path := range []string{"/api/v1/offers?cursor=9223372036854775807", "/api/v1/offers?cursor=1000001", "/market?cursor=9223372036854775807"} {
			code, _, body := rawGet(t, m.URL()+path, map[string]string{"X-Forwarded-For": "192.0.2.11"})
			if code != http.StatusUnprocessableEntity || strings.Contains(body, "internal") {
				t.Fatalf("%s: %d %.200s, want 422", path, code, body)
			}
		}
		if code, _, _ := rawGet(t, m.URL()+"/api/v1/offers?cursor=1000000", map[string]string{"X-Forwarded-For": "192.0.2.11"}); code != http.StatusOK {
			t.Fatalf("the largest cursor: %d", code)
		}
	})

	t.Run("lockout", func(t *testing.T) {
		if _, _, err := svc.Signup(ctx, accounts.SignupInput{Email: "victim@example.com", Password: "the owner's passphrase", Buyer: true}, "1.1.1.1", "t"); err != nil {
			t.Fatal(err)
		}
		attacker := newBrowser(t, m)
		attacker.from = "203.0.113.66"
		for i := 0; i < 10; i++ {
			wantStatus(t, attacker.login("victim@example.com", fmt.Sprintf("guess %d guess", i)), http.StatusUnprocessableEntity)
		}
		wantStatus(t, attacker.login("victim@example.com", "the owner's passphrase"), http.StatusTooManyRequests)
		owner := newBrowser(t, m)
		owner.from = "198.51.100.7"
		wantStatus(t, owner.login("victim@example.com", "the owner's passphrase"), http.StatusSeeOther)
		// Told at once of what happened.
		if got := text(owner.get("/account"), `[data-testid="flash"]`); !strings.Contains(got, "10 failed sign-in attempt") || !strings.Contains(got, "203.0.113.66") {
			t.Fatalf("the owner's notice = %q", got)
		}
	})

	// An account with an API key, for the API's limits.
	u, _, err := svc.Signup(ctx, accounts.SignupInput{Email: "script@example.com", Password: "a long passphrase", Buyer: true}, "1.1.1.1", "t")
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := svc.CreateAPIKey(ctx, u, "script")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("api rate limit per account", func(t *testing.T) {
		auth := map[string]string{"Authorization": "Bearer " + key, "X-Forwarded-For": "192.0.2.20"}
		var last http.Header
		for i := 0; i < 600; i++ {
			code, h, _ := rawGet(t, m.URL()+"/api/v1/me", auth)
			if code != http.StatusOK {
				t.Fatalf("request %d: %d", i+1, code)
			}
			last = h
		}
		if last.Get("X-RateLimit-Limit") != "600" || last.Get("X-RateLimit-Remaining") != "0" || last.Get("X-RateLimit-Reset") == "" {
			t.Fatalf("rate-limit headers: %v", last)
		}
		code, h, body := rawGet(t, m.URL()+"/api/v1/me", auth)
		if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(body, `"rate_limited"`) {
			t.Fatalf("request 601: %d %v %s", code, h, body)
		}
		// Another address does not help: the budget is the account's.
		auth["X-Forwarded-For"] = "192.0.2.21"
		if code, _, _ := rawGet(t, m.URL()+"/api/v1/me", auth); code != http.StatusTooManyRequests {
			t.Fatalf("the same key from another address: %d", code)
		}
	})
	t.Run("api rate limit per address", func(t *testing.T) {
		for i := 0; i < 120; i++ {
			if code, _, _ := rawGet(t, m.URL()+"/api/v1/regions", map[string]string{"X-Forwarded-For": "192.0.2.30"}); code != http.StatusOK {
				t.Fatalf("anonymous request %d: %d", i+1, code)
			}
		}
		if code, _, _ := rawGet(t, m.URL()+"/api/v1/regions", map[string]string{"X-Forwarded-For": "192.0.2.30"}); code != http.StatusTooManyRequests {
			t.Fatalf("anonymous request 121: %d", code)
		}
		if code, _, _ := rawGet(t, m.URL()+"/api/v1/regions", map[string]string{"X-Forwarded-For": "192.0.2.31"}); code != http.StatusOK {
			t.Fatalf("another address: %d", code)
		}
	})
	t.Run("bad keys", func(t *testing.T) {
		for i := 0; i < 30; i++ {
			if code, _, _ := rawGet(t, m.URL()+"/api/v1/me", map[string]string{"Authorization": "Bearer hwk_guess" + strconv.Itoa(i), "X-Forwarded-For": "192.0.2.40"}); code != http.StatusUnauthorized {
				t.Fatalf("bad key %d: %d", i+1, code)
			}
		}
		code, h, _ := rawGet(t, m.URL()+"/api/v1/me", map[string]string{"Authorization": "Bearer hwk_guess", "X-Forwarded-For": "192.0.2.40"})
		if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
			t.Fatalf("bad key 31: %d", code)
		}
	})
	t.Run("writes per account", func(t *testing.T) {
		u2, _, err := svc.Signup(ctx, accounts.SignupInput{Email: "orders@example.com", Password: "a long passphrase", Buyer: true}, "1.1.1.1", "t")
		if err != nil {
			t.Fatal(err)
		}
		_, key2, err := svc.CreateAPIKey(ctx, u2, "orders")
		if err != nil {
			t.Fatal(err)
		}
		post := func() int {
			req, _ := http.NewRequest(http.MethodPost, m.URL()+"/api/v1/orders", strings.NewReader(`{"type":"fok","model":"H100","count":1,"hours":1,"max_price_per_gpu_hour":"1","workload":{"command":"true"}}`))
			req.Header.Set("Authorization", "Bearer "+key2)
			req.Header.Set("X-Forwarded-For", "192.0.2.50")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		for i := 0; i < 60; i++ {
			if code := post(); code == http.StatusTooManyRequests {
				t.Fatalf("write %d refused early", i+1)
			}
		}
		if code := post(); code != http.StatusTooManyRequests {
			t.Fatalf("write 61: %d, want 429", code)
		}
	})
	t.Run("orders page through", func(t *testing.T) {
		u3, _, err := svc.Signup(ctx, accounts.SignupInput{Email: "many@example.com", Password: "a long passphrase", Buyer: true}, "1.1.1.1", "t")
		if err != nil {
			t.Fatal(err)
		}
		_, key3, err := svc.CreateAPIKey(ctx, u3, "many")
		if err != nil {
			t.Fatal(err)
		}
		const n = 120
		for i := 0; i < n; i++ {
			o := &models.Order{ID: models.NewID(), BuyerID: u3.ID, Type: "fok", Model: "H100", GPUs: 1, Hours: 1, Status: models.OrderFailed}
			if _, err := m.Store.CreateOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		seen := map[string]bool{}
		cursor := ""
		for pages := 0; ; pages++ {
			var out struct {
				Orders []struct {
					ID string `json:"id"`
				} `json:"orders"`
				Next string `json:"next_cursor"`
			}
			_, _, body := rawGet(t, m.URL()+"/api/v1/orders?limit=50&cursor="+url.QueryEscape(cursor), map[string]string{"Authorization": "Bearer " + key3, "X-Forwarded-For": "192.0.2.60"})
			if err := json.Unmarshal([]byte(body), &out); err != nil {
				t.Fatal(body)
			}
			for _, o := range out.Orders {
				if seen[o.ID] {
					t.Fatalf("order %s on two pages", o.ID)
				}
				seen[o.ID] = true
			}
			if out.Next == "" {
				break
			}
			if cursor = out.Next; pages > 5 {
				t.Fatal("paging does not end")
			}
		}
		if len(seen) != n {
			t.Fatalf("paged through %d of %d orders", len(seen), n)
		}
		if code, _, _ := rawGet(t, m.URL()+"/api/v1/orders?cursor=nonsense", map[string]string{"Authorization": "Bearer " + key3, "X-Forwarded-For": "192.0.2.60"}); code != http.StatusUnprocessableEntity {
			t.Fatalf("a bad cursor: %d", code)
		}
	})
	t.Run("gtc until 9999", func(t *testing.T) {
		u4, _, err := svc.Signup(ctx, accounts.SignupInput{Email: "forever@example.com", Password: "a long passphrase", Buyer: true}, "1.1.1.1", "t")
		if err != nil {
			t.Fatal(err)
		}
		_, key4, err := svc.CreateAPIKey(ctx, u4, "forever")
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Error struct{ Code, Field string } `json:"error"`
		}
		code := apiClient{t: t, base: m.URL(), key: key4}.do(http.MethodPost, "/orders", map[string]any{"type": "gtc", "model": "H100", "count": 1, "hours": 1,
			"max_price_per_gpu_hour": "1000000", "expires_at": "9999-12-31T00:00:00Z", "workload": map[string]string{"command": "true"}}, &out)
		if code != http.StatusUnprocessableEntity || out.Error.Field != "expires_at" {
			t.Fatalf("gtc until 9999: %d %+v", code, out)
		}
	})
	t.Run("heartbeat seq at the top", func(t *testing.T) {
		pu, _, err := svc.Signup(ctx, accounts.SignupInput{Email: "prov@example.com", Password: "a long passphrase", Provider: true}, "1.1.1.1", "t")
		if err != nil {
			t.Fatal(err)
		}
		id, key := registerTestAgent(t, m, pu.ID, "seq")
		beat := func(seq uint64) int {
			return postBeat(t, m, id, key, protocol.Heartbeat{AgentID: id, Seq: seq, BootID: "boot-1", SentAt: time.Now().UnixMilli(), AgentVersion: "x"})
		}
		// The agent API answers malformed messages 400 (docs/api.md).
		if code := beat(1<<64 - 1); code != http.StatusBadRequest {
			t.Fatalf("seq 2^64-1: %d, want 400", code)
		}
		if code := beat(2); code != http.StatusOK {
			t.Fatalf("the next beat of the boot: %d", code)
		}
	})
	t.Run("event streams per address", func(t *testing.T) {
		var bodies []io.Closer
		defer func() {
			for _, b := range bodies {
				b.Close()
			}
		}()
		open := func(ip string) int {
			req, _ := http.NewRequest(http.MethodGet, m.URL()+"/market/events", nil)
			req.Header.Set("X-Forwarded-For", ip)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode == http.StatusOK {
				bodies = append(bodies, resp.Body)
			} else {
				resp.Body.Close()
			}
			return resp.StatusCode
		}
		for i := 0; i < 16; i++ {
			if code := open("192.0.2.70"); code != http.StatusOK {
				t.Fatalf("stream %d: %d", i+1, code)
			}
		}
		if code := open("192.0.2.70"); code != http.StatusTooManyRequests {
			t.Fatalf("stream 17 from one address: %d", code)
		}
		if code := open("192.0.2.71"); code != http.StatusOK {
			t.Fatalf("another address: %d", code)
		}
	})
}
