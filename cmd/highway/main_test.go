package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/handlers"
	"github.com/highway-compute/highway/models/dbtest"
)

// cheapHash keeps argon2id real but small, so tests (under -race too)
// spend their time on behaviour rather than on hashing.
var cheapHash = accounts.HashParams{MemoryKiB: 64, Time: 1, Threads: 1}

// startServer boots the real marketplace on :0 against dsn.
func startServer(t testing.TB, dsn string, acct accounts.Config) *Main {
	t.Helper()
	return startServerAt(t, "127.0.0.1:0", dsn, acct, nil)
}

// startServerAt boots the marketplace on a given address; tune adjusts
// the configuration before it opens.
func startServerAt(t testing.TB, listen, dsn string, acct accounts.Config, tune func(*Main)) *Main {
	t.Helper()
	var logs bytes.Buffer
	m := NewMain(io.Discard, &logs)
	m.Config = Config{
		Listen: listen, Database: dsn, SessionSecret: strings.Repeat("s", 32),
		LogLevel: "warn", LogFormat: "text",
	}
	// Tests poll the API as fast as they like; the hostile-input suite
	// puts the limits back to test them.
	m.API = handlers.APILimits{PerAccount: -1, PerIP: -1, WritesPerAccount: -1, BadKeysPerIP: -1}
	if tune != nil {
		tune(m)
	}
	if acct.Hash.MemoryKiB == 0 {
		acct.Hash = cheapHash
	}
	m.Accounts = acct
	if err := m.Open(context.Background()); err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		// Every test that ran a server also checks that the browse rows
		// stayed in step with the machines through whatever it did.
		for _, b := range []*broker.Broker{m.Market, m.view.broker()} {
			if b != nil {
				if err := b.CheckBrowseIndex(); err != nil {
					t.Errorf("browse index: %v", err)
				}
			}
		}
		_ = m.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return m
}

// eachServer runs fn against a server on SQLite and one on PostgreSQL.
func eachServer(t *testing.T, acct accounts.Config, fn func(t *testing.T, m *Main)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, startServer(t, dbtest.SQLiteDSN(t), acct)) })
	t.Run("postgres", func(t *testing.T) { fn(t, startServer(t, dbtest.PostgresDSN(t), acct)) })
}

// browser is a cookie-keeping client that does not follow redirects, so
// tests see each 303.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
	// from, when set, is sent as X-Forwarded-For (a server that trusts
	// the loopback proxy then sees requests from that address).
	from string
}

func newBrowser(t testing.TB, m *Main) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: m.URL(), c: &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type page struct {
	status int
	header http.Header
	body   string
	doc    *goquery.Document
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	if b.from != "" {
		req.Header.Set("X-Forwarded-For", b.from)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(body))
	return &page{status: resp.StatusCode, header: resp.Header, body: string(body), doc: doc}
}

func (b *browser) get(path string) *page {
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) *page {
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// csrf fetches path and returns the form token it carries.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	p := b.get(path)
	tok, ok := p.doc.Find(`input[name="csrf_token"]`).First().Attr("value")
	if !ok || tok == "" {
		b.t.Fatalf("no csrf_token on %s (status %d)", path, p.status)
	}
	return tok
}

// submit posts form to action with a token fetched from the page at from.
func (b *browser) submit(from, action string, form url.Values) *page {
	form.Set("csrf_token", b.csrf(from))
	return b.post(action, form)
}

func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) signup(email, password string, roles ...string) *page {
	b.t.Helper()
	f := url.Values{"email": {email}, "name": {"Test User"}, "password": {password}}
	for _, r := range roles {
		f.Set(r, "on")
	}
	return b.submit("/signup", "/signup", f)
}

func (b *browser) login(email, password string) *page {
	return b.submit("/login", "/login", url.Values{"email": {email}, "password": {password}})
}

func text(p *page, sel string) string {
	return strings.TrimSpace(p.doc.Find(sel).Text())
}

func wantStatus(t testing.TB, p *page, want int) {
	t.Helper()
	if p.status != want {
		t.Fatalf("status = %d, want %d; body:\n%.600s", p.status, want, p.body)
	}
}

func TestSignupLoginAccountLogout(t *testing.T) {
	eachServer(t, accounts.Config{}, func(t *testing.T, m *Main) {
		b := newBrowser(t, m)
		p := b.signup("ada@example.com", "correct horse battery", "buyer", "provider")
		wantStatus(t, p, http.StatusSeeOther)
		if loc := p.header.Get("Location"); loc != "/account" {
			t.Fatalf("signup redirects to %q, want /account", loc)
		}
		p = b.get("/account")
		wantStatus(t, p, http.StatusOK)
		if got := text(p, `[data-testid="account-email"]`); got != "ada@example.com" {
			t.Fatalf("account email = %q", got)
		}
		if got := text(p, `[data-testid="account-roles"]`); !strings.Contains(got, "buyer") || !strings.Contains(got, "provider") {
			t.Fatalf("roles = %q, want buyer and provider", got)
		}
		if got := text(p, `[data-testid="flash"]`); !strings.Contains(got, "Welcome") {
			t.Fatalf("flash = %q, want a welcome", got)
		}
		// The flash shows once.
		if got := text(b.get("/account"), `[data-testid="flash"]`); got != "" {
			t.Fatalf("flash shown twice: %q", got)
		}

		p = b.submit("/account", "/logout", url.Values{})
		wantStatus(t, p, http.StatusSeeOther)
		if b.cookie(cookieSessionName) != "" {
			t.Fatal("session cookie kept after logout")
		}
		p = b.get("/account")
		wantStatus(t, p, http.StatusSeeOther)
		if loc := p.header.Get("Location"); loc != "/login?next=%2Faccount" {
			t.Fatalf("member page redirects a visitor to %q", loc)
		}

		// Log in again and land back where we were going.
		f := url.Values{"email": {"ADA@example.com"}, "password": {"correct horse battery"}, "next": {"/account"}}
		p = b.submit("/login?next=/account", "/login", f)
		wantStatus(t, p, http.StatusSeeOther)
		if loc := p.header.Get("Location"); loc != "/account" {
			t.Fatalf("login redirects to %q", loc)
		}
		wantStatus(t, b.get("/account"), http.StatusOK)
	})
}

// cookieSessionName mirrors handlers' cookie name; the test pins it.
const cookieSessionName = "hw_session"

func TestSessionIDChangesAtLogin(t *testing.T) {
	eachServer(t, accounts.Config{}, func(t *testing.T, m *Main) {
		b := newBrowser(t, m)
		wantStatus(t, b.signup("grace@example.com", "a long passphrase", "buyer"), http.StatusSeeOther)
		first := b.cookie(cookieSessionName)
		if first == "" {
			t.Fatal("no session after signup")
		}
		// Logging in again from the same browser must issue a new id and
		// kill the old one.
		wantStatus(t, b.submit("/account", "/login", url.Values{"email": {"grace@example.com"}, "password": {"a long passphrase"}}), http.StatusSeeOther)
		second := b.cookie(cookieSessionName)
		if second == "" || second == first {
			t.Fatalf("session id after login = %q, want a new one (was %q)", second, first)
		}
		attacker := newBrowser(t, m)
		u, _ := url.Parse(m.URL())
		attacker.c.Jar.SetCookies(u, []*http.Cookie{{Name: cookieSessionName, Value: first, Path: "/"}})
		wantStatus(t, attacker.get("/account"), http.StatusSeeOther)
	})
}

func TestCSRFRejected(t *testing.T) {
	eachServer(t, accounts.Config{}, func(t *testing.T, m *Main) {
		b := newBrowser(t, m)
		b.get("/signup") // gets the csrf cookie
		form := url.Values{"email": {"eve@example.com"}, "password": {"a long passphrase"}, "buyer": {"on"}}

		p := b.post("/signup", form) // no token
		wantStatus(t, p, http.StatusForbidden)
		form.Set("csrf_token", "forged")
		wantStatus(t, b.post("/signup", form), http.StatusForbidden)

		// A valid token from another browser does not work here.
		other := newBrowser(t, m)
		form.Set("csrf_token", other.csrf("/signup"))
		wantStatus(t, b.post("/signup", form), http.StatusForbidden)

		// A cross-site Origin is refused even with a good token.
		form.Set("csrf_token", b.csrf("/signup"))
		req, _ := http.NewRequest(http.MethodPost, m.URL()+"/signup", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		wantStatus(t, b.do(req), http.StatusForbidden)

		// Nothing was created: the same email still signs up.
		wantStatus(t, b.signup("eve@example.com", "a long passphrase", "buyer"), http.StatusSeeOther)

		// Logout without a token does not log out.
		wantStatus(t, b.post("/logout", url.Values{}), http.StatusForbidden)
		wantStatus(t, b.get("/account"), http.StatusOK)
	})
}

func TestRoleGuards(t *testing.T) {
	eachServer(t, accounts.Config{}, func(t *testing.T, m *Main) {
		ctx := context.Background()
		if _, err := accounts.New(m.Store, accounts.Config{Hash: cheapHash}).EnsureAdmin(ctx, "root@example.com", "admin password 1"); err != nil {
			t.Fatal(err)
		}
		visitor := newBrowser(t, m)
		p := visitor.get("/admin/users")
		wantStatus(t, p, http.StatusSeeOther)
		if !strings.HasPrefix(p.header.Get("Location"), "/login?next=") {
			t.Fatalf("visitor sent to %q", p.header.Get("Location"))
		}

		buyer := newBrowser(t, m)
		wantStatus(t, buyer.signup("bob@example.com", "a long passphrase", "buyer"), http.StatusSeeOther)
		p = buyer.get("/admin/users")
		wantStatus(t, p, http.StatusForbidden)
		if p.doc.Find(`[data-testid="error-page"]`).Length() != 1 {
			t.Fatal("403 is not the error page")
		}
		bob, err := m.Store.UserByEmail(ctx, "bob@example.com")
		if err != nil {
			t.Fatal(err)
		}
		// A buyer cannot make themselves admin by posting to the admin route.
		p = buyer.submit("/account", "/admin/users/"+bob.ID+"/roles", url.Values{"buyer": {"on"}, "admin": {"on"}})
		wantStatus(t, p, http.StatusForbidden)
		if u, _ := m.Store.UserByID(ctx, bob.ID); u.IsAdmin {
			t.Fatal("buyer granted themselves admin")
		}

		admin := newBrowser(t, m)
		wantStatus(t, admin.login("root@example.com", "admin password 1"), http.StatusSeeOther)
		p = admin.get("/admin/users")
		wantStatus(t, p, http.StatusOK)
		if p.doc.Find(`[data-testid="user-bob@example.com"]`).Length() != 1 {
			t.Fatal("admin page does not list bob")
		}
		p = admin.submit("/admin/users", "/admin/users/"+bob.ID+"/roles", url.Values{"buyer": {"on"}, "provider": {"on"}})
		wantStatus(t, p, http.StatusSeeOther)
		if u, _ := m.Store.UserByID(ctx, bob.ID); !u.IsProvider || u.IsAdmin {
			t.Fatalf("roles after admin change = %v", u.Roles())
		}
		// Disabling bob ends his session at once.
		p = admin.submit("/admin/users", "/admin/users/"+bob.ID+"/disable", url.Values{"disabled": {"true"}})
		wantStatus(t, p, http.StatusSeeOther)
		wantStatus(t, buyer.get("/account"), http.StatusSeeOther)
		p = buyer.login("bob@example.com", "a long passphrase")
		wantStatus(t, p, http.StatusUnprocessableEntity)
		if got := text(p, `[data-testid="error-email"]`); !strings.Contains(got, "disabled") {
			t.Fatalf("disabled login error = %q", got)
		}
		// An admin cannot remove their own admin role.
		root, _ := m.Store.UserByEmail(ctx, "root@example.com")
		p = admin.submit("/admin/users", "/admin/users/"+root.ID+"/roles", url.Values{"buyer": {"on"}})
		wantStatus(t, p, http.StatusSeeOther)
		if u, _ := m.Store.UserByID(ctx, root.ID); !u.IsAdmin {
			t.Fatal("admin removed their own admin role")
		}
		if got := text(admin.get("/admin/users"), `[data-testid="flash"]`); !strings.Contains(got, "own admin") {
			t.Fatalf("flash = %q", got)
		}
	})
}

func TestLoginRateLimited(t *testing.T) {
	// Limiters live in memory, per process; the database does not matter.
	t.Run("sqlite", func(t *testing.T) {
		m := startServer(t, dbtest.SQLiteDSN(t), accounts.Config{
			LoginPerIP:      accounts.NewLimiter(100, time.Minute),
			LoginPerAccount: accounts.NewLimiter(3, 15*time.Minute),
			SignupPerIP:     accounts.NewLimiter(2, time.Hour),
		})
		b := newBrowser(t, m)
		for range 3 {
			wantStatus(t, b.login("mallory@example.com", "wrong password 1"), http.StatusUnprocessableEntity)
		}
		p := b.login("mallory@example.com", "wrong password 1")
		wantStatus(t, p, http.StatusTooManyRequests)
		ra := p.header.Get("Retry-After")
		if ra == "" || ra == "0" {
			t.Fatalf("429 without Retry-After (got %q)", ra)
		}
		if !strings.Contains(text(p, `[data-testid="form-error"]`), "Too many attempts") {
			t.Fatalf("429 page does not explain: %.400s", p.body)
		}
		if got, _ := p.doc.Find(`input[name="email"]`).Attr("value"); got != "mallory@example.com" {
			t.Fatalf("rate-limited form lost the email: %q", got)
		}

		// Sign-ups per IP: the third in an hour is refused.
		wantStatus(t, newBrowser(t, m).signup("s1@example.com", "a long passphrase", "buyer"), http.StatusSeeOther)
		wantStatus(t, newBrowser(t, m).signup("s2@example.com", "a long passphrase", "buyer"), http.StatusSeeOther)
		p = newBrowser(t, m).signup("s3@example.com", "a long passphrase", "buyer")
		wantStatus(t, p, http.StatusTooManyRequests)
		if p.header.Get("Retry-After") == "" {
			t.Fatal("signup 429 without Retry-After")
		}
	})
}

func TestSignupBadInput(t *testing.T) {
	eachServer(t, accounts.Config{}, func(t *testing.T, m *Main) {
		b := newBrowser(t, m)
		wantStatus(t, b.signup("taken@example.com", "a long passphrase", "buyer"), http.StatusSeeOther)
		b = newBrowser(t, m)
		cases := []struct {
			name, email, userName, password string
			roles                           []string
			field, msg                      string
			status                          int
		}{
			{"empty email", "", "N", "a long passphrase", []string{"buyer"}, "email", "required", 422},
			{"malformed email", "not-an-email", "N", "a long passphrase", []string{"buyer"}, "email", "like name@example.com", 422},
			{"overlong email", strings.Repeat("a", 250) + "@x.io", "N", "a long passphrase", []string{"buyer"}, "email", "at most 254", 422},
			{"short password", "new@example.com", "N", "short", []string{"buyer"}, "password", "at least 10", 422},
			{"overlong name", "new@example.com", strings.Repeat("n", 101), "a long passphrase", []string{"buyer"}, "name", "at most 100", 422},
			{"no role", "new@example.com", "N", "a long passphrase", nil, "roles", "at least one", 422},
			{"duplicate email", "Taken@Example.com", "N", "a long passphrase", []string{"buyer"}, "email", "already registered", 409},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				f := url.Values{"email": {tc.email}, "name": {tc.userName}, "password": {tc.password}}
				for _, r := range tc.roles {
					f.Set(r, "on")
				}
				p := b.submit("/signup", "/signup", f)
				wantStatus(t, p, tc.status)
				if got := text(p, `[data-testid="error-`+tc.field+`"]`); !strings.Contains(got, tc.msg) {
					t.Fatalf("error next to %s = %q, want it to contain %q", tc.field, got, tc.msg)
				}
				// What the user typed is kept, except the password.
				if got, _ := p.doc.Find(`input[name="email"]`).Attr("value"); got != strings.TrimSpace(tc.email) {
					t.Errorf("email not kept: %q", got)
				}
				if got, _ := p.doc.Find(`input[name="password"]`).Attr("value"); got != "" {
					t.Errorf("password echoed back")
				}
			})
		}
		if n, _ := m.Store.CountUsers(context.Background()); n != 1 {
			t.Fatalf("users after bad sign-ups = %d, want 1", n)
		}
	})
}

func TestErrorPagesHideInternals(t *testing.T) {
	m := startServer(t, dbtest.SQLiteDSN(t), accounts.Config{})
	b := newBrowser(t, m)
	p := b.get("/no/such/page")
	wantStatus(t, p, http.StatusNotFound)
	if p.doc.Find(`[data-testid="error-page"]`).Length() != 1 {
		t.Fatal("404 is not the error page")
	}
	req, _ := http.NewRequest(http.MethodGet, m.URL()+"/api/v1/nothing", nil)
	p = b.do(req)
	wantStatus(t, p, http.StatusNotFound)
	if !strings.Contains(p.body, `"code":"not_found"`) {
		t.Fatalf("API 404 body = %s", p.body)
	}
	// With the database gone, a page needing it answers a plain 500 that
	// names no internals, and /readyz reports unavailable.
	wantStatus(t, b.signup("x@example.com", "a long passphrase", "buyer"), http.StatusSeeOther)
	_ = m.Store.Close()
	p = b.get("/account")
	wantStatus(t, p, http.StatusInternalServerError)
	if !strings.Contains(p.body, "internal error") || strings.Contains(strings.ToLower(p.body), "sql") {
		t.Fatalf("500 page leaks or does not explain: %.800s", p.body)
	}
	p = b.get("/readyz")
	wantStatus(t, p, http.StatusServiceUnavailable)
}

func TestHealthMetricsAndStatic(t *testing.T) {
	m := startServer(t, dbtest.SQLiteDSN(t), accounts.Config{})
	b := newBrowser(t, m)
	wantStatus(t, b.get("/healthz"), http.StatusOK)
	wantStatus(t, b.get("/readyz"), http.StatusOK)
	home := b.get("/")
	wantStatus(t, home, http.StatusOK)
	css, _ := home.doc.Find(`link[rel="stylesheet"]`).Attr("href")
	if !strings.HasPrefix(css, "/static/css/app.") || css == "/static/css/app.css" {
		t.Fatalf("stylesheet href %q is not content-hashed", css)
	}
	p := b.get(css)
	wantStatus(t, p, http.StatusOK)
	if cc := p.header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Fatalf("static Cache-Control = %q", cc)
	}
	p = b.get("/metrics")
	wantStatus(t, p, http.StatusOK)
	if !strings.Contains(p.body, `highway_http_requests_total{method="GET",route="/",status="200"} 1`) {
		t.Fatalf("metrics lack the home request:\n%.2000s", p.body)
	}
	if !strings.Contains(p.body, `highway_http_request_duration_seconds_bucket{method="GET",route="/static/*path"`) {
		t.Fatal("metrics lack route latency")
	}
}

func TestCommandLine(t *testing.T) {
	ctx := context.Background()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"serve", "--help"}, &out, &errb); err == nil || !strings.Contains(errb.String(), "HIGHWAY_DATABASE") {
		t.Fatalf("serve --help: err %v, output %q", err, errb.String())
	}
	if err := run(ctx, []string{"bogus"}, &out, &errb); err == nil {
		t.Fatal("unknown command accepted")
	}
	dsn := dbtest.SQLiteDSN(t)
	out.Reset()
	if err := run(ctx, []string{"migrate", "--database", dsn}, &out, &errb); err != nil || !strings.Contains(out.String(), "migration version") {
		t.Fatalf("migrate: %v %q", err, out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"admin", "create", "--database", dsn, "--email", "boss@example.com"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "password: ") {
		t.Fatalf("generated password not printed: %q", out.String())
	}
	if err := run(ctx, []string{"admin", "create", "--database", dsn, "--email", "bad"}, &out, &errb); err == nil {
		t.Fatal("admin create accepted a bad email")
	}
	// serve refuses to start without a secret, with a message saying how.
	m := NewMain(io.Discard, io.Discard)
	if err := m.ParseServeFlags([]string{"--database", dsn, "--listen", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	m.Config.SessionSecret = ""
	if err := m.Open(ctx); err == nil || !strings.Contains(err.Error(), "HIGHWAY_SESSION_SECRET") {
		t.Fatalf("serve without secret: %v", err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
