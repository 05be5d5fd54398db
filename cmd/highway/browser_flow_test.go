//go:build !race

// Runs an in-process chain, so like the end-to-end test it is left out of
// -race runs (cosmos/cosmos-sdk#22650); `make test` runs it race-free.

package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"cosmossdk.io/math"
	"github.com/chromedp/chromedp"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"

	"github.com/highway-compute/highway/chain/network"
)

// TestBrowserRentAndDispute is a buyer's and an admin's whole journey in
// real headless Chromium against the real marketplace on a real chain:
// sign up through the form → fund the wallet from the dev faucet → browse
// and filter the market → rent an offer from its row, with the escrow
// shown before submitting → the order page follows the match to a lease
// by itself → the lease page shows the workload running and its output →
// open a dispute with a statement; the provider answers; an admin, in a
// second browser, reads both statements in the dispute's evidence and
// splits the escrow on chain → the buyer's open lease page shows the
// decision without a reload.
func TestBrowserRentAndDispute(t *testing.T) {
	buyer := tab{t, newChrome(t, 4*time.Minute)}
	provKey := secp256k1.GenPrivKey()
	e := startE2E(t, network.Account{Name: "provider", Key: provKey, Funds: math.NewInt(1_000_000)})
	base := e.srv.URL()

	provBrowser, provAPI := e.user("prov@example.com", "provider")
	if code := provAPI.do(http.MethodPut, "/prices", map[string]string{"model": "H100", "price_per_gpu_hour": "3600000"}, nil); code != http.StatusOK {
		t.Fatalf("set price: %d", code)
	}
	e.runAgent(provBrowser, provKey, "h100x2", "browser-flow", nil)

	// Sign up through the form; fund the wallet from the dev faucet.
	buyer.signUp(base, "renter@example.com")
	buyer.fund(base)

	// Browse, filter by model, wait for the verified offer (the page
	// updates itself when the machine's verification clears).
	buyer.do("filter the market", chromedp.Navigate(base+"/market"), chromedp.SetValue(chromedp.ID("f-model"), "H100"),
		chromedp.SetValue(chromedp.ID("f-count"), "1"))
	buyer.submit("filter the market", chromedp.Click(chromedp.CSS(`[data-testid="filter-submit"]`)))
	// Filters belong in the query string (a shareable URL).
	if loc, err := chromedp.Run(buyer.ctx, chromedp.Location()); err != nil || !strings.Contains(loc, "model=H100") || !strings.Contains(loc, "count=1") {
		t.Fatalf("filtered market URL %q (%v): filters belong in the query string", loc, err)
	}
	{
		// Bounded, and on failure it says whether the market had the offer
		// (a page that missed its update) or not (the machine never
		// verified; the agent's log follows).
		ctx, cancel := context.WithTimeout(buyer.ctx, 90*time.Second)
		err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid="offer-row"]`)))
		cancel()
		if err != nil {
			html, _ := chromedp.Run(buyer.ctx, chromedp.OuterHTML(chromedp.CSS(`#offers`)))
			t.Fatalf("the live offer: %v\nthe page's table:\n%.1500s\nthe market's offers: %s", err, html, provBrowser.get("/api/v1/offers?model=H100").body)
		}
	}
	if price := buyer.text(`[data-testid="offer-price"]`); !strings.Contains(price, "3.6") {
		t.Fatalf("offer price %q", price)
	}

	// The depth, in a tab of its own that stays open: both GPUs asked
	// at 3.6 HWY and no matches yet; it follows the rental below by itself.
	depth := tab{t, newChrome(t, 2*time.Minute)}
	depth.do("the depth", chromedp.Navigate(base+"/market"))
	depth.submit("the depth", chromedp.Click(chromedp.CSS(`[data-testid="depth-link"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="depth-filter"]`)), chromedp.SetValue(chromedp.ID("d-model"), "H100"))
	depth.submit("the H100 depth", chromedp.Click(chromedp.CSS(`[data-testid="depth-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="depth"]`)))
	depth.waitText("both GPUs asked", `[data-testid="depth-asks"]`, "3.600000 HWY", 10*time.Second)
	if got := depth.liveText(`[data-testid="depth-asks"] [data-testid="depth-gpus"]`); got != "2" {
		t.Fatalf("GPUs asked before the rental: %q", got)
	}
	depth.do("no matches yet", chromedp.WaitVisible(chromedp.CSS(`[data-testid="depth-matches-empty"]`)))

	// Rent it from its row: the order form names the offer and shows the
	// escrow needed against the balance before anything is submitted.
	buyer.submit("rent now", chromedp.Click(chromedp.CSS(`[data-testid="offer-rent"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="order-offer"]`)),
		chromedp.SetValue(chromedp.ID("o-command"), `echo "browser rental on $CUDA_VISIBLE_DEVICES"; sleep 300`))
	buyer.submit("the escrow estimate", chromedp.Click(chromedp.CSS(`[data-testid="order-preview"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="escrow-needed"]`)))
	if needed := buyer.text(`[data-testid="escrow-needed"]`); !strings.Contains(needed, "3.6") {
		t.Fatalf("escrow needed for 1 GPU × 1 hour at 3.6 HWY: %q", needed)
	}
	// The chain's proof window, as a share of the epoch, before the buyer commits.
	if share := buyer.text(`[data-testid="proving-share"]`); !strings.Contains(share, "Proof-of-Compute takes") || !strings.Contains(share, "% of the lease's GPU time") {
		t.Fatalf("proving share: %q", share)
	}
	buyer.submit("place the order", chromedp.Click(chromedp.CSS(`[data-testid="order-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="order-status"]`)))

	// The order page follows the match to the lease without a reload.
	buyer.do("the lease link", chromedp.WaitVisible(chromedp.CSS(`[data-testid="order-lease"]`)))
	buyer.submit("open the lease", chromedp.Click(chromedp.CSS(`[data-testid="order-lease"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="lease-status"]`)))
	buyer.waitText("the workload running", `[data-testid="lease-workload"]`, "running", 60*time.Second)
	buyer.waitText("the workload's output", `[data-testid="lease-logs"]`, "browser rental on GPU-", 60*time.Second)
	loc, err := chromedp.Run(buyer.ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	leaseID := loc[strings.LastIndex(loc, "/")+1:]

	// The depth tab, never reloaded, shows the match and the GPU it took.
	depth.waitText("the match in the depth", `[data-testid="depth-matches"]`, "3.600000 HWY", 30*time.Second)
	depth.waitText("one GPU left asked", `[data-testid="depth-asks"] [data-testid="depth-gpus"]`, "1", 30*time.Second)
	depth.do("the clearing chart", chromedp.WaitVisible(chromedp.CSS(`[data-testid="chart-clearing"]`)))
	depth.screenshot("depth.png")

	// Extend by hand: no hours is refused beside the field; an hour more
	// (the provider's agent signs, the wallet escrows) moves the end.
	ends := buyer.liveText(`[data-testid="lease-ends"]`)
	buyer.do("extend by nothing", chromedp.SetValue(chromedp.ID("extend-hours"), "0"))
	buyer.submit("extend by nothing", chromedp.Click(chromedp.CSS(`[data-testid="lease-extend-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="extend-error"]`)))
	buyer.do("extend", chromedp.SetValue(chromedp.ID("extend-hours"), "1"))
	buyer.submit("extend", chromedp.Click(chromedp.CSS(`[data-testid="lease-extend-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)))
	if flash := buyer.text(`[data-testid="flash"]`); !strings.Contains(flash, "extended") {
		t.Fatalf("after extending: %q", flash)
	}
	extended := buyer.liveText(`[data-testid="lease-ends"]`)
	if extended == ends {
		t.Fatalf("the end did not move: %q", ends)
	}

	// Auto-extend, with a floor the wallet (100 − 2 × 3.6 HWY) cannot keep
	// after another hour: on, but the page says it will not extend and
	// why. With a floor it can keep, the leader extends it by itself (the
	// test's marketplace takes leases ending within 150 minutes).
	buyer.do("auto-extend above the wallet", chromedp.SetValue(chromedp.ID("auto-hours"), "1"), chromedp.SetValue(chromedp.ID("auto-floor"), "95"))
	buyer.submit("auto-extend above the wallet", chromedp.Click(chromedp.CSS(`[data-testid="auto-extend-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="lease-will-extend"]`)))
	// The summary is a live region, swapped in whole: read it afresh.
	buyer.waitText("the outlook with a floor of 95 HWY", `[data-testid="lease-will-extend"]`, "will not auto-extend: the wallet holds 92.8", 10*time.Second)
	buyer.do("auto-extend", chromedp.SetValue(chromedp.ID("auto-floor"), "1"))
	buyer.submit("auto-extend", chromedp.Click(chromedp.CSS(`[data-testid="auto-extend-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="auto-extend-state"]`)))
	waitFor(t, "the automatic extension", 60*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(buyer.ctx, 5*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/leases/"+leaseID)); err != nil {
			return false
		}
		note, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="auto-extend-note"]`)))
		return err == nil && strings.Contains(note, "Extended by 1 h")
	})
	buyer.waitText("the outlook after the automatic extension", `[data-testid="lease-ends"]`, "auto-extends by 1 h", 10*time.Second)
	if got := buyer.liveText(`[data-testid="lease-ends"]`); strings.HasPrefix(got, strings.Fields(extended)[0]+" "+strings.Fields(extended)[1]) {
		t.Fatalf("after the automatic extension the lease ends %q (was %q)", got, extended)
	}
	buyer.screenshot("lease-extended.png")

	// A dispute without a statement is refused beside the field; with
	// one it opens and freezes the escrow.
	buyer.submit("empty dispute", chromedp.Click(chromedp.CSS(`[data-testid="lease-dispute-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="error-statement"]`)))
	buyer.do("dispute", chromedp.SetValue(chromedp.ID("d-statement"), "The run was much slower than an H100."))
	buyer.submit("dispute", chromedp.Click(chromedp.CSS(`[data-testid="lease-dispute-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="lease-dispute-status"]`)))
	buyer.waitText("the lease disputed", `[data-testid="lease-status"]`, "disputed", 30*time.Second)

	// The provider answers from its side of the lease page.
	page := provBrowser.get("/leases/" + leaseID)
	wantStatus(t, page, http.StatusOK)
	action, ok := page.doc.Find(`[data-testid="dispute-statement"] form`).Attr("action")
	if !ok {
		t.Fatalf("the provider's lease page has no statement form:\n%.800s", page.body)
	}
	wantStatus(t, provBrowser.submit("/leases/"+leaseID, action, url.Values{"statement": {"Full speed throughout; see the cleared epochs."}}), http.StatusSeeOther)
	buyer.waitText("the provider's statement", `[data-testid="lease-dispute-provider"]`, "Full speed throughout", 30*time.Second)

	// An admin, in a browser of their own, resolves from the queue.
	e.user("judge@example.com", "buyer")
	judge, err := e.srv.Store.UserByEmail(context.Background(), "judge@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Store.SetUserRoles(context.Background(), judge.ID, true, false, true); err != nil {
		t.Fatal(err)
	}
	admin := tab{t, newChrome(t, 2*time.Minute)}
	admin.do("admin login", chromedp.Navigate(base+"/login"), chromedp.SetValue(chromedp.ID("email"), "judge@example.com"),
		chromedp.SetValue(chromedp.ID("password"), "a long passphrase"))
	admin.submit("admin login", chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="account-email"]`)))
	admin.do("the queue", chromedp.Navigate(base+"/admin/disputes"))
	admin.submit("the dispute", chromedp.Click(chromedp.CSS(`[data-testid="dispute-link"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="resolve-form"]`)))
	if s := admin.text(`[data-testid="statement-buyer"]`); !strings.Contains(s, "much slower") {
		t.Fatalf("buyer's statement in the evidence: %q", s)
	}
	if s := admin.text(`[data-testid="statement-provider"]`); !strings.Contains(s, "Full speed") {
		t.Fatalf("provider's statement in the evidence: %q", s)
	}
	if s := admin.text(`[data-testid="dispute-logs"]`); !strings.Contains(s, "browser rental on GPU-") {
		t.Fatalf("workload logs in the evidence: %q", s)
	}
	admin.do("a share out of range", chromedp.SetValue(chromedp.ID("r-bps"), "12000"))
	admin.submit("a share out of range", chromedp.Click(chromedp.CSS(`[data-testid="resolve-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="error-buyer_bps"]`)))
	if kept, err := chromedp.Run(admin.ctx, chromedp.Value(chromedp.ID("r-bps"))); err != nil || kept != "12000" {
		t.Fatalf("the refused share is not kept in the form: %q %v", kept, err)
	}
	admin.do("resolve", chromedp.SetValue(chromedp.ID("r-bps"), "7500"), chromedp.SetValue(chromedp.ID("r-note"), "Slow but working."))
	admin.submit("resolve", chromedp.Click(chromedp.CSS(`[data-testid="resolve-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="dispute-outcome"]`)))
	if s := admin.text(`[data-testid="outcome-buyer"]`); !strings.Contains(s, "75") {
		t.Fatalf("outcome shown to the admin: %q", s)
	}

	// The buyer's page, open all along, shows the decision by itself.
	buyer.waitText("the decision on the buyer's page", `[data-testid="lease-dispute-outcome"]`, "75", 30*time.Second)
	if note := buyer.text(`[data-testid="lease-dispute-note"]`); note != "Slow but working." {
		t.Fatalf("arbiter's note on the buyer's page: %q", note)
	}
	buyer.screenshot("lease.png")

	// The wallet's history, from the chain's transfer events: the faucet,
	// the escrow paid for the lease, and the buyer's share coming back.
	waitFor(t, "the wallet history", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(buyer.ctx, 5*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/wallet")); err != nil {
			return false
		}
		kinds, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="wallet-history"]`)))
		return err == nil && strings.Contains(kinds, "faucet") && strings.Contains(kinds, "escrow") && strings.Contains(kinds, "refund")
	})
	// And the provider sees it on the same lease page.
	page = provBrowser.get("/leases/" + leaseID)
	if got := text(page, `[data-testid="lease-dispute-outcome"]`); !strings.Contains(got, "75") {
		t.Fatalf("decision on the provider's page: %q", got)
	}
}
