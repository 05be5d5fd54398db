//go:build !race

package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserInterruptible is the interruptible main path in real headless
// Chromium: a bid below the offer's floor is refused beside the price, a
// bid at the floor rents the GPU (the lease page says interruptible), and
// when an on-demand order takes the GPU the open lease page shows the
// preemption notice and then the close, without a reload.
func TestBrowserInterruptible(t *testing.T) {
	buyer := tab{t, newChrome(t, 3*time.Minute)}
	w := startPreemptWorld(t)
	base := w.e.srv.URL()

	buyer.signUp(base, "bidder@example.com")
	buyer.fund(base)

	// The market shows the offer's floor beside its price.
	buyer.do("the market", chromedp.Navigate(base+"/market"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="offer-spot"]`)))
	if floor := buyer.text(`[data-testid="offer-spot"]`); !strings.Contains(floor, "1.8") {
		t.Fatalf("offer's floor %q", floor)
	}

	// A bid under the 1.8 HWY floor: refused beside the price, nothing placed.
	buyer.do("the order form", chromedp.Navigate(base+"/orders/new?type=rent_now&offer_id="+w.offer),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="order-offer"]`)),
		chromedp.Click(chromedp.ID("o-interruptible")), chromedp.SetValue(chromedp.ID("o-price"), "1.5"),
		chromedp.SetValue(chromedp.ID("o-command"), "echo bid running; trap 'echo saving; exit 0' TERM; sleep 300 & wait"))
	buyer.submit("bid below the floor", chromedp.Click(chromedp.CSS(`[data-testid="order-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="order-offer"]`)))
	if msg := buyer.text(`[data-testid="error-max_price_per_gpu_hour"]`); !strings.Contains(msg, "floor") {
		t.Fatalf("error beside the price: %q", msg)
	}
	// At the floor (the box stays ticked, the command as typed).
	buyer.do("bid at the floor", chromedp.SetValue(chromedp.ID("o-price"), "1.8"))
	buyer.submit("bid at the floor", chromedp.Click(chromedp.CSS(`[data-testid="order-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="order-status"]`)))
	buyer.do("the lease link", chromedp.WaitVisible(chromedp.CSS(`[data-testid="order-lease"]`)))
	buyer.submit("open the lease", chromedp.Click(chromedp.CSS(`[data-testid="order-lease"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="lease-interruptible"]`)))
	buyer.waitText("the bid's workload", `[data-testid="lease-logs"]`, "bid running", 60*time.Second)

	// On demand takes the GPU: the open page shows the notice, then the close.
	var o placedOrder
	if code := w.paid.do(http.MethodPost, "/orders", map[string]any{"type": "fok", "model": "H100", "count": 1,
		"max_price_per_gpu_hour": "3600000", "hours": 1, "workload": map[string]string{"command": "sleep 300"}}, &o); code != http.StatusCreated {
		t.Fatalf("on-demand order: %d", code)
	}
	buyer.waitText("the preemption notice", `[data-testid="lease-preempt"]`, "Preempted", 20*time.Second)
	if at := buyer.liveText(`[data-testid="lease-preempt-at"]`); !strings.Contains(at, "UTC") {
		t.Fatalf("preempt at %q", at)
	}
	buyer.waitText("the workload's checkpoint", `[data-testid="lease-logs"]`, "saving", 20*time.Second)
	buyer.waitText("the close", `[data-testid="lease-status"]`, "closed", 40*time.Second)
	buyer.waitText("why it closed", `[data-testid="lease-close-reason"]`, "preempted", 10*time.Second)
	buyer.screenshot("preempted.png")
}
