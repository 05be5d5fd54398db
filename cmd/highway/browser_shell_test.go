//go:build !race

package main

import (
	"context"
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
