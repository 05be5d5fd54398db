package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

// akServer is the real HTTP handler over a real store, on a local port.
type akServer struct {
	url   string
	store *models.Store
}

func newAKServer(t *testing.T, s *models.Store) *akServer {
	t.Helper()
	var logs bytes.Buffer
	b, err := broker.New(context.Background(), broker.Config{Store: s, Regions: []string{"local"}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{
		Broker:   b,
		Store:    s,
		Accounts: accounts.New(s, accounts.Config{Hash: accounts.HashParams{MemoryKiB: 64, Time: 1, Threads: 1}}),
		Logger:   slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Secret:   []byte(strings.Repeat("s", 32)),
		BaseURL:  "http://127.0.0.1",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &akServer{url: srv.URL, store: s}
}

// akBrowser keeps cookies and does not follow redirects.
type akBrowser struct {
	t    *testing.T
	base string
	c    *http.Client
}

type akPage struct {
	status int
	header http.Header
	body   string
	doc    *goquery.Document
}

func (s *akServer) browser(t *testing.T) *akBrowser {
	jar, _ := cookiejar.New(nil)
	return &akBrowser{t: t, base: s.url, c: &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *akBrowser) do(req *http.Request) *akPage {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(body))
	return &akPage{status: resp.StatusCode, header: resp.Header, body: string(body), doc: doc}
}

func (b *akBrowser) get(path string) *akPage {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, b.base+path, nil)
	return b.do(req)
}

// submit posts form to action with the CSRF token of the page at from.
func (b *akBrowser) submit(from, action string, form url.Values) *akPage {
	b.t.Helper()
	p := b.get(from)
	tok, ok := p.doc.Find(`input[name="csrf_token"]`).First().Attr("value")
	if !ok || tok == "" {
		b.t.Fatalf("no csrf_token on %s (status %d)", from, p.status)
	}
	form.Set("csrf_token", tok)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, b.base+action, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// api calls the JSON API with key as the bearer token ("" sends none)
// and with this browser's cookies.
func (b *akBrowser) api(method, path, key string) *akPage {
	req, _ := http.NewRequestWithContext(context.Background(), method, b.base+path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return b.do(req)
}

func (b *akBrowser) signup(email string) {
	b.t.Helper()
	p := b.submit("/signup", "/signup", url.Values{"email": {email}, "password": {"a long passphrase"}, "buyer": {"on"}})
	akWant(b.t, p, http.StatusSeeOther)
}

// createKey creates a key on the account page and returns it as shown.
func (b *akBrowser) createKey(name string) string {
	b.t.Helper()
	p := b.submit("/account", "/account/api-keys", url.Values{"name": {name}})
	akWant(b.t, p, http.StatusCreated)
	key := strings.TrimSpace(p.doc.Find(`[data-testid="api-key-new"]`).Text())
	if !strings.HasPrefix(key, "hwk_") {
		b.t.Fatalf("new key shown as %q", key)
	}
	return key
}

func akWant(t *testing.T, p *akPage, status int) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status = %d, want %d; body:\n%.800s", p.status, status, p.body)
	}
}

// akWantAPIError checks the API's JSON error body.
func akWantAPIError(t *testing.T, p *akPage, status int, code string) {
	t.Helper()
	akWant(t, p, status)
	if ct := p.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("content type = %q, want JSON", ct)
	}
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(p.body), &body); err != nil {
		t.Fatalf("error body %q: %v", p.body, err)
	}
	if body.Error.Code != code || body.Error.Message == "" {
		t.Fatalf("error = %+v, want code %q and a message", body.Error, code)
	}
}

func TestAPIKeysEndToEnd(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		srv := newAKServer(t, s)
		ctx := context.Background()
		alice := srv.browser(t)
		alice.signup("alice@example.com")

		p := alice.get("/account")
		akWant(t, p, http.StatusOK)
		if p.doc.Find(`[data-testid="api-keys-none"]`).Length() != 1 {
			t.Fatal("account page does not say there are no keys")
		}

		key := alice.createKey("laptop")
		// Shown once: the next view lists the key by prefix only.
		p = alice.get("/account")
		if strings.Contains(p.body, key) || p.doc.Find(`[data-testid="api-key-new"]`).Length() != 0 {
			t.Fatal("the key is shown again after creation")
		}
		row := p.doc.Find(`[data-testid="api-key-row"]`)
		if row.Length() != 1 || strings.TrimSpace(row.Find(`[data-testid="api-key-name"]`).Text()) != "laptop" {
			t.Fatalf("key rows = %d, want one named laptop", row.Length())
		}
		if got := row.Find(`[data-testid="api-key-prefix"]`).Text(); !strings.HasPrefix(got, key[:10]) {
			t.Fatalf("prefix shown = %q, want %q", got, key[:10])
		}
		if got := strings.TrimSpace(row.Find(`[data-testid="api-key-last-used"]`).Text()); got != "never" {
			t.Fatalf("last used = %q before any use", got)
		}
		keyID, _ := row.Attr("data-key-id")

		// The key works, from a client with no cookies at all.
		client := srv.browser(t)
		p = client.api(http.MethodGet, "/api/v1/me", key)
		akWant(t, p, http.StatusOK)
		var me struct {
			User struct {
				ID, Email string
				Roles     []string
			}
		}
		if err := json.Unmarshal([]byte(p.body), &me); err != nil {
			t.Fatal(err)
		}
		if me.User.Email != "alice@example.com" || me.User.ID == "" || len(me.User.Roles) != 1 || me.User.Roles[0] != "buyer" {
			t.Fatalf("/me = %s", p.body)
		}
		if cc := p.header.Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("Cache-Control = %q, want no-store", cc)
		}
		if got := strings.TrimSpace(alice.get("/account").doc.Find(`[data-testid="api-key-last-used"]`).Text()); got == "never" {
			t.Fatal("last used not recorded")
		}

		// No key, a wrong key, another scheme: 401 JSON with a challenge.
		p = client.api(http.MethodGet, "/api/v1/me", "")
		akWantAPIError(t, p, http.StatusUnauthorized, "unauthorized")
		if p.header.Get("WWW-Authenticate") == "" {
			t.Fatal("401 without WWW-Authenticate")
		}
		akWantAPIError(t, client.api(http.MethodGet, "/api/v1/me", key[:len(key)-1]+"x"), http.StatusUnauthorized, "unauthorized")
		akWantAPIError(t, client.api(http.MethodGet, "/api/v1/me", "hwk_nonsense"), http.StatusUnauthorized, "unauthorized")
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.url+"/api/v1/me", nil)
		req.Header.Set("Authorization", "Basic "+key)
		akWantAPIError(t, client.do(req), http.StatusUnauthorized, "unauthorized")

		// A logged-in browser's session cookie is not an API credential.
		akWantAPIError(t, alice.api(http.MethodGet, "/api/v1/me", ""), http.StatusUnauthorized, "unauthorized")

		// Unknown API paths stay a JSON 404, key or not.
		akWantAPIError(t, client.api(http.MethodGet, "/api/v1/nothing-here", key), http.StatusNotFound, "not_found")

		// Another user can neither see nor revoke alice's key.
		bob := srv.browser(t)
		bob.signup("bob@example.com")
		if bob.get("/account").doc.Find(`[data-testid="api-key-row"]`).Length() != 0 {
			t.Fatal("bob sees alice's key")
		}
		p = bob.submit("/account", "/account/api-keys/"+keyID+"/revoke", url.Values{})
		akWant(t, p, http.StatusNotFound)
		akWant(t, client.api(http.MethodGet, "/api/v1/me", key), http.StatusOK)

		// Revoking without the CSRF token does nothing.
		req, _ = http.NewRequestWithContext(ctx, http.MethodPost, srv.url+"/account/api-keys/"+keyID+"/revoke", nil)
		akWant(t, alice.do(req), http.StatusForbidden)
		akWant(t, client.api(http.MethodGet, "/api/v1/me", key), http.StatusOK)

		// The owner revokes it: refused at once, and gone from the list.
		p = alice.submit("/account", "/account/api-keys/"+keyID+"/revoke", url.Values{})
		akWant(t, p, http.StatusSeeOther)
		akWantAPIError(t, client.api(http.MethodGet, "/api/v1/me", key), http.StatusUnauthorized, "unauthorized")
		p = alice.get("/account")
		if p.doc.Find(`[data-testid="api-key-row"]`).Length() != 0 {
			t.Fatal("revoked key still listed")
		}
		if got := p.doc.Find(`[data-testid="flash"]`).Text(); !strings.Contains(got, "revoked") {
			t.Fatalf("flash = %q", got)
		}

		// Disabling a user stops their keys.
		key2 := alice.createKey("CI")
		akWant(t, client.api(http.MethodGet, "/api/v1/me", key2), http.StatusOK)
		u, err := s.UserByEmail(ctx, "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetUserDisabled(ctx, u.ID, true); err != nil {
			t.Fatal(err)
		}
		akWantAPIError(t, client.api(http.MethodGet, "/api/v1/me", key2), http.StatusUnauthorized, "unauthorized")
	})
}

func TestAPIKeyBadNameShowsFieldError(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		srv := newAKServer(t, s)
		b := srv.browser(t)
		b.signup("carol@example.com")
		long := strings.Repeat("n", 65)
		for _, name := range []string{"", "   ", long} {
			p := b.submit("/account", "/account/api-keys", url.Values{"name": {name}})
			akWant(t, p, http.StatusUnprocessableEntity)
			field := p.doc.Find(`#api-key-name`).Parent()
			if msg := field.Find(`[data-testid="error-name"]`).Text(); msg == "" {
				t.Fatalf("name %q: no error beside the name field", name)
			}
			if !field.HasClass("has-error") {
				t.Fatalf("name %q: field not marked as erroneous", name)
			}
			if v, _ := p.doc.Find(`#api-key-name`).Attr("value"); v != strings.TrimSpace(name) {
				t.Fatalf("name field re-rendered with %q, want %q", v, strings.TrimSpace(name))
			}
			if p.doc.Find(`[data-testid="api-key-new"]`).Length() != 0 {
				t.Fatal("a key is shown after a refused create")
			}
		}
		if b.get("/account").doc.Find(`[data-testid="api-key-row"]`).Length() != 0 {
			t.Fatal("a refused create stored a key")
		}
	})
}

func TestAPIKeyPagesNeedLogin(t *testing.T) {
	srv := newAKServer(t, dbtest.SQLite(t))
	visitor := srv.browser(t)
	p := visitor.submit("/login", "/account/api-keys", url.Values{"name": {"x"}})
	akWant(t, p, http.StatusSeeOther)
	if loc := p.header.Get("Location"); !strings.HasPrefix(loc, "/login?next=") {
		t.Fatalf("visitor sent to %q", loc)
	}
}

// apiOptionalAuth has no route of its own yet, so it is tried on a probe
// route: a valid key sets the user, anything else leaves a visitor.
func TestAPIOptionalAuth(t *testing.T) {
	store := dbtest.SQLite(t)
	ctx := context.Background()
	svc := accounts.New(store, accounts.Config{Hash: accounts.HashParams{MemoryKiB: 64, Time: 1, Threads: 1}})
	u := &models.User{Email: "opt@example.com", PasswordHash: "h", IsBuyer: true}
	if err := store.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	_, key, err := svc.CreateAPIKey(ctx, u, "probe")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{store: store, accounts: svc, log: slog.New(slog.DiscardHandler), now: time.Now}
	e := gin.New()
	e.GET("/api/v1/probe", s.apiOptionalAuth, func(c *gin.Context) {
		if u := currentUser(c); u != nil {
			c.String(http.StatusOK, u.Email)
			return
		}
		c.String(http.StatusOK, "visitor")
	})
	for _, tc := range []struct{ auth, want string }{
		{"", "visitor"},
		{"Bearer " + key, "opt@example.com"},
		{"bearer " + key, "opt@example.com"},
		{"Bearer hwk_wrong", "visitor"},
		{"Basic abc", "visitor"},
	} {
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/v1/probe", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		if w.Code != http.StatusOK || w.Body.String() != tc.want {
			t.Errorf("Authorization %q: %d %q, want 200 %q", tc.auth, w.Code, w.Body.String(), tc.want)
		}
	}
}
