//go:build !race

package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/highway-compute/highway/accounts"
)

// TestBrowserShell types into the lease page's terminal in real headless
// Chromium and reads the workload's answer, through the marketplace and
// the agent's outbound link; the session then shows on the lease page.
func TestBrowserShell(t *testing.T) {
	buyer := tab{t, newChrome(t, 3*time.Minute)}
	w := startShellProvider(t)
	base := w.e.srv.URL()
	buyer.signUp(base, "shell@example.com")
	// The same user's API key rents (the browser flows of renting are
	// TestBrowserRentAndDispute's).
	u, err := w.e.srv.Store.UserByEmail(context.Background(), "shell@example.com")
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := accounts.New(w.e.srv.Store, accounts.Config{Hash: cheapHash}).CreateAPIKey(context.Background(), u, "shell")
	if err != nil {
		t.Fatal(err)
	}
	w.rentFor(t, apiClient{t: t, base: base, key: key})

	buyer.do("the lease", chromedp.Navigate(base+"/leases/"+w.lease), chromedp.WaitVisible(chromedp.CSS(`[data-testid="lease-shell-open"]`)))
	buyer.submit("open a shell", chromedp.Click(chromedp.CSS(`[data-testid="lease-shell-open"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.xterm-helper-textarea`)))
	buyer.waitText("the shell's prompt", `[data-testid="shell-status"]`, "Connected.", 20*time.Second)
	buyer.do("type a command", chromedp.Focus(chromedp.CSS(`.xterm-helper-textarea`)), typeText("echo browser-$((6*7)) ✓"), chromedp.KeyEvent("\r"))
	buyer.waitText("the answer", `.xterm-rows`, "browser-42 ✓", 20*time.Second)
	buyer.screenshot("shell.png")
	buyer.do("exit", chromedp.Focus(chromedp.CSS(`.xterm-helper-textarea`)), typeText("exit"), chromedp.KeyEvent("\r"))
	buyer.waitText("the shell's end", `[data-testid="shell-status"]`, "exited", 20*time.Second)

	buyer.do("the lease again", chromedp.Navigate(base+"/leases/"+w.lease), chromedp.WaitVisible(chromedp.CSS(`[data-testid="shell-session-row"]`)))
	if row := buyer.text(`[data-testid="shell-session-row"]`); !strings.Contains(row, "buyer") || !strings.Contains(row, "exited") {
		t.Fatalf("the session's record: %q", row)
	}
}

// typeText inserts text as typing does, one input event: xterm.js takes
// typed text from its textarea's input events (synthetic key events would
// type each character twice, once per key and once per char event).
func typeText(text string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, input.InsertText, input.InsertTextParams{Text: text})
		return err
	})
}

// TestBrowserPortForward: on the lease page the buyer forwards a port
// (a bad one is refused next to the field), follows its link in Chromium
// (which resolves *.localhost to the loopback) and reads the workload's
// page at the forward's own origin; closing it ends that.
func TestBrowserPortForward(t *testing.T) {
	buyer := tab{t, newChrome(t, 3*time.Minute)}
	w := startShellProvider(t)
	base := w.e.srv.URL()
	buyer.signUp(base, "ports@example.com")
	u, err := w.e.srv.Store.UserByEmail(context.Background(), "ports@example.com")
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := accounts.New(w.e.srv.Store, accounts.Config{Hash: cheapHash}).CreateAPIKey(context.Background(), u, "ports")
	if err != nil {
		t.Fatal(err)
	}
	port := w.rentServer(t, apiClient{t: t, base: base, key: key})

	buyer.do("the lease", chromedp.Navigate(base+"/leases/"+w.lease), chromedp.WaitVisible(chromedp.CSS(`[data-testid="port-input"]`)))
	buyer.do("type a port that is none", chromedp.SetValue(chromedp.CSS(`[data-testid="port-input"]`), "70000"))
	buyer.submit("a port that is none", chromedp.Click(chromedp.CSS(`[data-testid="port-submit"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="port-error"]`)))
	if msg := buyer.text(`[data-testid="port-error"]`); !strings.Contains(msg, "1 to 65535") {
		t.Fatalf("the port's error: %q", msg)
	}
	buyer.do("type the port", chromedp.SetValue(chromedp.CSS(`[data-testid="port-input"]`), strconv.Itoa(port)))
	buyer.submit("forward the port", chromedp.Click(chromedp.CSS(`[data-testid="port-submit"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="port-open"]`)))
	href, err := chromedp.Run(buyer.ctx, chromedp.AttributeValue(chromedp.CSS(`[data-testid="port-open"]`), "href"))
	if err != nil || !href.Exists {
		t.Fatalf("the forward's link: %v", err)
	}
	buyer.do("open the forward", chromedp.Navigate(base+href.Value+"?next=/echo"))
	buyer.waitText("the workload's page", "body", `"path":"/echo"`, 20*time.Second)
	if at, err := chromedp.Run(buyer.ctx, chromedp.Location()); err != nil || !strings.Contains(at, ".ports.localhost:") {
		t.Fatalf("the forward opened at %s, not on the ports domain", at)
	}
	if body := buyer.text("body"); strings.Contains(body, "hw_port") {
		t.Fatalf("the ports cookie reached the workload: %s", body)
	}
	buyer.do("the lease again", chromedp.Navigate(base+"/leases/"+w.lease), chromedp.WaitVisible(chromedp.CSS(`[data-testid="port-close"]`)))
	buyer.submit("close the forward", chromedp.Click(chromedp.CSS(`[data-testid="port-close"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="port-row"]`)))
	if row := buyer.text(`[data-testid="port-row"]`); !strings.Contains(row, "closed by the buyer") {
		t.Fatalf("the closed forward's row: %q", row)
	}
}
