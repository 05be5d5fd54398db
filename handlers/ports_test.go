package handlers

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

// TestPortsHostRefuses tries the ports host as a stranger would: made-up
// hosts, forged, expired and borrowed tokens and cookies, another user's
// cookie, a closed forward, an open redirect. Each is refused before
// anything is dialled (TestPortForwardEndToEnd in cmd/highway covers the
// forward that works).
func TestPortsHostRefuses(t *testing.T) {
	store := dbtest.SQLiteLoose(t)
	b, err := broker.New(context.Background(), broker.Config{Store: store, Regions: []string{"local"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	h, err := New(Config{Broker: b, Store: store, Accounts: accounts.New(store, accounts.Config{}),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Secret: []byte(strings.Repeat("s", 32)),
		BaseURL: "https://highway.test", PortsDomain: "Ports.Test.", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	s := h.(*hostSplit).s
	const slugA, slugB = "aaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbb"
	for _, id := range []string{"u1", "u2"} {
		if err := store.CreateUser(context.Background(), &models.User{ID: id, Email: id + "@example.com", PasswordHash: "x", IsBuyer: true}); err != nil {
			t.Fatal(err)
		}
	}
	closed := now
	for _, f := range []models.PortForward{
		{ID: models.NewID(), LeaseID: "l1", UserID: "u1", Port: 8888, Slug: slugA, CreatedAt: now},
		{ID: models.NewID(), LeaseID: "l1", UserID: "u1", Port: 9999, Slug: slugB, CreatedAt: now, ClosedAt: &closed, CloseReason: "closed by the buyer"},
	} {
		if err := store.CreatePortForward(context.Background(), &f); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.PortURL(slugA); got != "https://"+slugA+".ports.test" {
		t.Fatalf("PortURL: %q", got)
	}
	do := func(host, target string, hdr http.Header) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Host = host
		for k, v := range hdr {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	cookie := func(v string) http.Header { return http.Header{"Cookie": {portCookie + "=" + v}} }
	hostA, hostB := slugA+".ports.test", slugB+".ports.test:443"
	login := s.portToken("login", slugA, "u1", portLoginTTL)
	cases := []struct {
		name, host, target string
		hdr                http.Header
		want               int
	}{
		{"a host that is no slug", "evil.ports.test", "/", nil, http.StatusNotFound},
		{"a slug with a dot", "a." + slugA + ".ports.test", "/", nil, http.StatusNotFound},
		{"an unknown forward", "cccccccccccccccccccccccccc.ports.test", "/", cookie(s.portToken("cookie", "cccccccccccccccccccccccccc", "u1", time.Hour)), http.StatusNotFound},
		{"no credentials", hostA, "/", nil, http.StatusUnauthorized},
		{"a forged cookie", hostA, "/", cookie("u1.9999999999.AAAA"), http.StatusUnauthorized},
		{"a login token as cookie", hostA, "/", cookie(login), http.StatusUnauthorized},
		{"another forward's cookie", hostA, "/", cookie(s.portToken("cookie", slugB, "u1", time.Hour)), http.StatusUnauthorized},
		{"an expired cookie", hostA, "/", cookie(s.portToken("cookie", slugA, "u1", -time.Second)), http.StatusUnauthorized},
		{"another user's cookie", hostA, "/", cookie(s.portToken("cookie", slugA, "u2", time.Hour)), http.StatusNotFound},
		{"a dead API key", hostA, "/", http.Header{"Authorization": {"Bearer " + accounts.APIKeyPrefix + "nope"}}, http.StatusUnauthorized},
		{"a closed forward", hostB, "/", cookie(s.portToken("cookie", slugB, "u1", time.Hour)), http.StatusGone},
		{"a cookie token as login", hostA, portLoginPath + "?t=" + s.portToken("cookie", slugA, "u1", time.Hour), nil, http.StatusUnauthorized},
		{"another forward's login", hostB, portLoginPath + "?t=" + login, nil, http.StatusUnauthorized},
		{"an expired login", hostA, portLoginPath + "?t=" + s.portToken("login", slugA, "u1", -time.Second), nil, http.StatusUnauthorized},
	}
	for _, c := range cases {
		if rec := do(c.host, c.target, c.hdr); rec.Code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, rec.Code, rec.Body.String(), c.want)
		}
	}
	// A browser without the cookie is sent through the marketplace.
	rec := do(hostA, "/lab?x=1", http.Header{"Accept": {"text/html"}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "https://highway.test/ports/"+slugA+"/open?next=%2Flab%3Fx%3D1" {
		t.Fatalf("browser without cookie: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	// The login sets the forward's cookie and goes on, never off-site.
	for next, want := range map[string]string{"%2Flab": "/lab", "%2F%2Fevil.example": "/", "https%3A%2F%2Fevil.example": "/"} {
		rec := do(hostA, portLoginPath+"?t="+login+"&next="+next, nil)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != want {
			t.Fatalf("login next=%s: %d %q, want %q", next, rec.Code, rec.Header().Get("Location"), want)
		}
		sc := rec.Header().Get("Set-Cookie")
		if !strings.Contains(sc, portCookie+"=u1.") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "Secure") || strings.Contains(strings.ToLower(sc), "domain=") {
			t.Fatalf("the ports cookie: %q", sc)
		}
	}
	// Another site's page (every forward is one site to a browser) cannot
	// act with the buyer's cookie; a plain navigation can.
	good := s.portToken("cookie", slugA, "u1", time.Hour)
	for _, c := range []struct {
		name, method string
		hdr          http.Header
	}{
		{"a form posted from another forward", http.MethodPost, http.Header{"Sec-Fetch-Site": {"same-site"}, "Sec-Fetch-Mode": {"navigate"}}},
		{"a fetch from another forward", http.MethodGet, http.Header{"Sec-Fetch-Site": {"same-site"}, "Sec-Fetch-Mode": {"cors"}}},
		{"a fetch from anywhere", http.MethodPut, http.Header{"Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"cors"}}},
		{"a WebSocket from another forward", http.MethodGet, http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Origin": {"https://" + slugB + ".ports.test"}}},
	} {
		req := httptest.NewRequest(c.method, "/api", nil)
		req.Host = hostA
		for k, v := range c.hdr {
			req.Header[k] = v
		}
		req.Header.Set("Cookie", portCookie+"="+good)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Errorf("%s: %d %s, want 403", c.name, rec.Code, rec.Body.String())
		}
	}
	// A cookie another forward's page set for the whole domain, sent
	// first, does not lock the buyer out: the valid one still counts (the
	// closed forward answers 410 only to its buyer).
	tossed := http.Header{"Cookie": {portCookie + "=u2.9999999999.AAAA; " + portCookie + "=" + s.portToken("cookie", slugB, "u1", time.Hour)}}
	if rec := do(hostB, "/", tossed); rec.Code != http.StatusGone {
		t.Fatalf("a tossed cookie first: %d %s", rec.Code, rec.Body.String())
	}
	// An account disabled meanwhile loses the forward, cookie or not.
	if err := store.DB.Model(&models.User{}).Where("id = ?", "u1").Update("disabled_at", now).Error; err != nil {
		t.Fatal(err)
	}
	if rec := do(hostB, "/", cookie(s.portToken("cookie", slugB, "u1", time.Hour))); rec.Code != http.StatusUnauthorized {
		t.Fatalf("a disabled account's cookie: %d %s", rec.Code, rec.Body.String())
	}
	// The bare ports domain is nobody's, the marketplace's least of all.
	if rec := do("ports.test", "/healthz", nil); rec.Code != http.StatusNotFound {
		t.Fatalf("the bare ports domain: %d", rec.Code)
	}
	// The marketplace's own host is untouched by the ports routing.
	if rec := do("highway.test", "/healthz", nil); rec.Code != http.StatusOK {
		t.Fatalf("marketplace host: %d", rec.Code)
	}
}

// TestStripKeys: every Authorization header carrying a Highway key goes,
// however it is spelled or wrapped; the workload's own stay.
func TestStripKeys(t *testing.T) {
	key := accounts.APIKeyPrefix + "secret"
	basic := base64.StdEncoding.EncodeToString([]byte("user:" + key))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, v := range []string{"token jupyter-abc", "Bearer " + key, "bearer " + strings.ToUpper(key), "Basic " + basic, "Token x, Bearer " + key, "Basic " + base64.StdEncoding.EncodeToString([]byte("u:p"))} {
		r.Header.Add("Authorization", v)
	}
	stripKeys(r)
	got := r.Header.Values("Authorization")
	want := []string{"token jupyter-abc", "Basic " + base64.StdEncoding.EncodeToString([]byte("u:p"))}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("kept %q, want %q", got, want)
	}
}
