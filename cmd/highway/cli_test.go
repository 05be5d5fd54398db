//go:build !race

// Runs the real loop (an in-process chain), so like the end-to-end test it
// is left out of the race build and run race-free by make test.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"

	"github.com/highway-compute/highway/chain/network"
)

// TestBuyerCLI drives the buyer's CLI against the real loop (chain, agent,
// marketplace): mistakes on the command line exit 2 with what to type, a
// missing key or someone else's lease exit 1 with what to do, and the
// main path works: offers, rent, logs, extend, leases, close, logs -f to
// the end, wallet.
func TestBuyerCLI(t *testing.T) {
	provKey := secp256k1.GenPrivKey()
	e := startE2E(t, network.Account{Name: "provider", Key: provKey, Funds: math.NewInt(1_000_000)})
	provBrowser, provAPI := e.user("prov@example.com", "provider")
	if code := provAPI.do(http.MethodPut, "/prices", map[string]string{"model": "H100", "price_per_gpu_hour": "3600000"}, nil); code != http.StatusOK {
		t.Fatalf("set price: %d", code)
	}
	e.runAgent(provBrowser, provKey, "h100x2", "cli", nil)
	_, buyer := e.user("cli@example.com", "buyer")
	_, stranger := e.user("someone@example.com", "buyer")
	if code := buyer.do(http.MethodPost, "/wallet/faucet", nil, nil); code != http.StatusOK {
		t.Fatalf("faucet: %d", code)
	}

	hw := func(key string, args ...string) (stdout, stderr string, err error) {
		t.Helper()
		t.Setenv("HIGHWAY_API_KEY", key)
		var out, errb bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		err = run(ctx, append(args, "--url", e.srv.URL()), &out, &errb)
		return out.String(), errb.String(), err
	}
	ok := func(args ...string) string {
		t.Helper()
		out, errOut, err := hw(buyer.key, args...)
		if err != nil {
			t.Fatalf("highway %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}

	// Mistakes: usage errors (exit 2) say what to type; API errors (exit
	// 1) say what to do.
	for _, c := range []struct {
		key  string
		args []string
		code int
		want string
	}{
		{buyer.key, []string{"rent", "--model", "H100", "--max-price", "3"}, 2, "give the workload"},
		{buyer.key, []string{"offers", "--max-price", "three"}, 2, "amount of HWY"},
		{buyer.key, []string{"logs"}, 2, "needs a lease id"},
		{buyer.key, []string{"extend", "L1"}, 2, "--hours"},
		{buyer.key, []string{"leases", "extra"}, 2, "takes no arguments"},
		{buyer.key, []string{"nonsense"}, 2, "unknown command"},
		{"", []string{"leases"}, 1, "HIGHWAY_API_KEY"},
		{buyer.key, []string{"rent", "--model", "H100", "--max-price", "3.6", "--hours", "0", "--command", "true"}, 1, "(--hours)"},
	} {
		_, _, err := hw(c.key, c.args...)
		if err == nil || exitCode(err) != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("highway %s: %v (exit %d), want exit %d saying %q", strings.Join(c.args, " "), err, exitCode(err), c.code, c.want)
		}
	}

	// The offer, once the machine is verified.
	waitFor(t, "the offer", 90*time.Second, func() bool {
		return strings.Contains(ok("offers", "--model", "H100"), "3.600000")
	})
	if out := ok("offers", "--model", "H100", "--count", "3"); !strings.Contains(out, "No offers match") {
		t.Errorf("offers for 3 GPUs on a 2-GPU machine: %q", out)
	}
	var offers struct {
		Offers []struct{ ID string } `json:"offers"`
	}
	if err := json.Unmarshal([]byte(ok("offers", "--model", "H100", "--json")), &offers); err != nil || len(offers.Offers) != 1 {
		t.Fatalf("offers --json: %+v %v", offers, err)
	}

	// Rent, follow, extend, list, close.
	out := ok("rent", "--model", "H100", "--max-price", "3.6", "--hours", "1", "--command", "echo cli-hello; sleep 60")
	m := regexp.MustCompile(`lease (\S+),`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("rent: %q", out)
	}
	lease := m[1]
	waitFor(t, "the workload's output", 60*time.Second, func() bool { return strings.Contains(ok("logs", lease), "cli-hello") })
	if out := ok("extend", lease, "--hours", "1"); !strings.Contains(out, "extended") {
		t.Errorf("extend: %q", out)
	}
	if out := ok("leases"); !strings.Contains(out, lease) || !strings.Contains(out, "active") {
		t.Errorf("leases: %q", out)
	}
	if _, _, err := hw(stranger.key, "close", lease); err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "highway leases") {
		t.Errorf("a stranger closes the lease: %v", err)
	}
	if out := ok("close", lease); !strings.Contains(out, "closed") {
		t.Errorf("close: %q", out)
	}
	// Following a lease whose workload stopped prints its output and ends.
	out, errOut, err := hw(buyer.key, "logs", lease, "-f")
	if err != nil || !strings.Contains(out, "cli-hello") || !strings.Contains(errOut, "stopped") {
		t.Errorf("logs -f of a closed lease: %v %q %q", err, out, errOut)
	}
	if out := ok("wallet"); !strings.Contains(out, "Balance") || !strings.Contains(out, "HWY") {
		t.Errorf("wallet: %q", out)
	}

	// A low-balance threshold above what the wallet holds alerts once.
	if code := buyer.do(http.MethodPut, "/alerts", map[string]string{"balance_below": "1000000000"}, nil); code != http.StatusOK {
		t.Fatalf("set the balance alert: %d", code)
	}
	var alerts struct {
		Notifications []struct{ Kind, Text string } `json:"notifications"`
	}
	waitFor(t, "the low-balance alert", 10*time.Second, func() bool {
		buyer.do(http.MethodGet, "/notifications", nil, &alerts)
		for _, n := range alerts.Notifications {
			if n.Kind == "balance_low" && strings.Contains(n.Text, "below your alert at 1000.000000 HWY") {
				return true
			}
		}
		return false
	})
}
