package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/handlers"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/poc"
)

// chromium finds a headless Chromium; without one the browser tests skip,
// unless HIGHWAY_REQUIRE_BROWSER=1 (CI installs Chromium and sets it).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("HIGHWAY_REQUIRE_BROWSER") == "1" {
		t.Fatal("HIGHWAY_REQUIRE_BROWSER=1 but no Chromium found (apt-get install -y chromium)")
	}
	t.Skip("no Chromium on this machine (apt-get install -y chromium); browser tests skipped")
	return ""
}

// newChrome starts headless Chromium with the flags this project's
// machines need and returns a browser context that ends after within.
// Each one is a separate browser with its own cookies (its own user).
func newChrome(t *testing.T, within time.Duration) context.Context {
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun,
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, within)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// tab is one headless Chromium page with the steps the browser tests use;
// a failed step fails the test with what it was doing.
type tab struct {
	t   *testing.T
	ctx context.Context
}

func (b tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// submit clicks what submits a form (or follows a link) and waits for
// the next page to load before the steps after it: a selector present on
// both pages would otherwise match the old one.
func (b tab) submit(what string, click chromedp.Action[chromedp.Void], then ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	mark := func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[bool](`window.__highwayOld = true`)(ctx, tg)
		return chromedp.Void{}, err
	}
	b.do(what, mark, click)
	waitFor(b.t, what+": the next page", 30*time.Second, func() bool {
		gone, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`window.__highwayOld === undefined && document.readyState !== "loading"`))
		return err == nil && gone
	})
	b.do(what, then...)
}

func (b tab) text(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

// liveText reads an element of a live region, which may be swapped out
// between finding the element and reading it: it tries again.
func (b tab) liveText(sel string) string {
	b.t.Helper()
	var v string
	waitFor(b.t, "the text of "+sel, 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		defer cancel()
		var err error
		v, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		// A live region is swapped in whole: caught mid-swap under load
		// it reads empty (a CI-load failure of TestBrowserRentAndDispute).
		return err == nil && strings.TrimSpace(v) != ""
	})
	return v
}

// waitText waits until the element's text contains want (live regions
// are swapped in whole, so the element is looked up afresh each time).
func (b tab) waitText(what, sel, want string, within time.Duration) {
	b.t.Helper()
	waitFor(b.t, what, within, func() bool {
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		defer cancel()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		return err == nil && strings.Contains(v, want)
	})
}

// signUp creates an account through the form; the tab stays logged in.
func (b tab) signUp(base, email string) {
	b.t.Helper()
	b.do("sign up", chromedp.Navigate(base+"/signup"), chromedp.SetValue(chromedp.ID("email"), email),
		chromedp.SetValue(chromedp.ID("password"), "a long passphrase"))
	b.submit("sign up", chromedp.Click(chromedp.CSS(`[data-testid="signup-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="account-email"]`)))
}

// fund funds the account's wallet from the dev faucet.
func (b tab) fund(base string) {
	b.t.Helper()
	b.do("wallet", chromedp.Navigate(base+"/wallet"))
	b.submit("faucet", chromedp.Click(chromedp.CSS(`[data-testid="wallet-faucet"]`)))
	b.waitText("the faucet's funds", `[data-testid="wallet-balance"]`, "100", 30*time.Second)
}

// screenshot saves the whole page as a test artifact (HIGHWAY_ARTIFACTS,
// default a temporary directory; CI keeps it).
func (b tab) screenshot(name string) {
	b.t.Helper()
	shot, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("HIGHWAY_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "highway-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, shot, 0o644); err != nil || len(shot) < 1000 {
		b.t.Fatalf("screenshot %s: %d bytes, %v", path, len(shot), err)
	}
	b.t.Logf("screenshot: %s (%d bytes)", path, len(shot))
}

// TestBrowserLiveMarket drives real headless Chromium: a visitor's /market
// page fills in by itself (server-sent events, no reload) when a provider
// machine clears its verification PoC; a bad filter shows its error beside
// the field; signing up through the form lands on the account page with a
// session; the order form says plainly that this marketplace has no chain.
func TestBrowserLiveMarket(t *testing.T) {
	ctx := newChrome(t, 90*time.Second)
	srv := startServerAt(t, "127.0.0.1:0", dbtest.SQLiteDSN(t), accounts.Config{}, func(m *Main) {
		m.Agents = handlers.AgentConfig{HeartbeatInterval: 300 * time.Millisecond, OfflineMisses: 3, MaxPoll: 500 * time.Millisecond}
		// A slow calibration (5 000 nonces/s per H100) so verification
		// clears even under the race detector on a loaded 2-core machine.
		params := poc.DevParams()
		params.H100NoncesPerSecond = 5000
		m.Broker = broker.Config{VerifyParams: params, VerifyWork: 4 * time.Second}
	})
	base := srv.URL()

	// The market is empty; the page stays open.
	text, do := tab{t, ctx}.text, tab{t, ctx}.do
	do("open /market", chromedp.Navigate(base+"/market"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="market-summary"]`)))
	if summary := text(`[data-testid="h100-equivalents"]`); !strings.Contains(summary, "0.000") {
		t.Fatalf("empty market's H100-equivalents = %q", summary)
	}

	// A provider's machine comes up: enrolled, beating, verified.
	b := newBrowser(t, srv)
	wantStatus(t, b.signup("prov@example.com", "a long passphrase", "provider"), 303)
	u, err := srv.Store.UserByEmail(context.Background(), "prov@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Market.SetPrice(context.Background(), u.ID, "H100", 2_490_000); err != nil {
		t.Fatal(err)
	}
	id, key := registerTestAgent(t, srv, u.ID, "browser-box")
	sess, _ := fakeGPUs(t, "h100x1", "browser-box") // closed after the agent stops
	runTestAgent(t, srv, id, key, sess, "hwy1browsertestprovider", 300*time.Millisecond)

	// The open page shows the offer without being reloaded.
	do("live offer", chromedp.WaitVisible(chromedp.CSS(`[data-testid="offer-row"]`)))
	if price := text(`[data-testid="offer-price"]`); !strings.Contains(price, "2.49") {
		t.Fatalf("offer price = %q", price)
	}
	// Its verification proof measured it: the rate per GPU and the price
	// of a measured H100-hour stand beside the class's price.
	if m := text(`[data-testid="offer-measured"]`); !strings.Contains(m, " H100") || !strings.Contains(m, "/ H100-hour") {
		t.Fatalf("offer's measured rate = %q", m)
	}
	// The summary above the table follows too.
	do("live summary", chromedp.WaitVisible(chromedp.CSS(`[data-testid="market-summary"] [data-testid="machines-online"]`)))
	waitFor(t, "the live summary", 10*time.Second, func() bool { return text(`[data-testid="machines-online"]`) == "1" })
	// The browse page with its live offer, kept as a test artifact.
	tab{t, ctx}.screenshot("browse.png")

	// A bad filter: the error is beside its field and the input is kept.
	do("bad filter", chromedp.SetValue(chromedp.ID("f-vram"), "lots"))
	tab{t, ctx}.submit("bad filter", chromedp.Click(chromedp.CSS(`[data-testid="filter-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="error-min_vram_gib"]`)))
	kept, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("f-vram")))
	if fieldErr := text(`[data-testid="error-min_vram_gib"]`); err != nil || fieldErr == "" || kept != "lots" {
		t.Fatalf("bad filter: error %q, kept %q (%v)", fieldErr, kept, err)
	}

	// Sign up through the real form (CSRF token, cookies), then the order
	// form explains that nothing can be leased without a chain.
	do("sign up", chromedp.Navigate(base+"/signup"), chromedp.SetValue(chromedp.ID("email"), "buyer@example.com"),
		chromedp.SetValue(chromedp.ID("password"), "a long passphrase"))
	tab{t, ctx}.submit("sign up", chromedp.Click(chromedp.CSS(`[data-testid="signup-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="account-email"]`)))
	if email := text(`[data-testid="account-email"]`); email != "buyer@example.com" {
		t.Fatalf("account page shows %q", email)
	}
	do("order form", chromedp.Navigate(base+"/orders/new"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="order-form"]`)))
	if page := text("main"); !strings.Contains(page, "not connected to a chain") {
		t.Fatalf("order form without a chain does not say so:\n%.600s", page)
	}
}
