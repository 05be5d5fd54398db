package handlers

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
)

// TestSafeNextRefusesBypasses: every known way to turn a post-login
// "next" into another origin, as browsers read URLs (tabs and newlines
// dropped anywhere, leading spaces and controls trimmed, backslashes taken
// for slashes, schemes and user-info honoured), falls back to /account;
// ordinary local paths pass unchanged.
func TestSafeNextRefusesBypasses(t *testing.T) {
	for _, bad := range []string{
		"", "account", "//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example", "/\\/evil.example",
		"/\t/evil.example/", "/\n/evil.example", "/\r/evil.example", "\t//evil.example", " //evil.example", "/ /evil.example",
		"/\x00/evil.example", "/\x0b/evil.example", "/\x7f/evil.example", "/\\t/evil.example",
		"https://evil.example", "http:/evil.example", "javascript:alert(1)", "data:text/html,x", "//user@evil.example",
		"/%2F/evil.example", "/.\\evil.example", "/x\\y",
	} {
		if got := safeNext(bad); got != "/account" {
			t.Errorf("safeNext(%q) = %q, want /account", bad, got)
		}
	}
	for _, ok := range []string{"/", "/market", "/orders/new?offer=abc&count=2", "/leases/0195-a#epochs", "/market?model=H100&sort=rtt", "/%E2%9C%93"} {
		if got := safeNext(ok); got != ok {
			t.Errorf("safeNext(%q) = %q, want it unchanged", ok, got)
		}
	}
}

// FuzzAPIBodies feeds arbitrary bytes to the JSON API's request decoding
// and order validation: nothing may panic, and every refusal is a 4xx the
// API can name (EINVALID), never an internal error.
func FuzzAPIBodies(f *testing.F) {
	for _, seed := range []string{
		`{"type":"fok","model":"H100","count":1,"hours":1,"max_price_per_gpu_hour":"1000","workload":{"command":"true"}}`,
		`{"type":"gtc","expires_at":"9999-12-31T00:00:00Z","hours":1,"max_price_per_gpu_hour":"1","workload":{"image":"x","args":["a"]}}`,
		`{"type":"rent_now","offer_id":"m","hours":-1,"count":1e99}`, `{"to":"hwy1","amount":"-1"}`, `{"buyer_bps":10001}`,
		`{"statement":"` + strings.Repeat("x", 5000) + `"}`, `[]`, `null`, `{"type":1}`, `{"a":1}{"b":2}`, "\xff\xfe", ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		decode := func(v any) error {
			c, _ := gin.CreateTestContext(httptest.NewRecorder())
			c.Request = httptest.NewRequest(http.MethodPost, "/api/v1/x", bytes.NewReader(body))
			err := bindJSON(c, v)
			if err != nil && highway.ErrorCode(err) != highway.EINVALID {
				t.Fatalf("decode refused %q with %v, not EINVALID", body, err)
			}
			return err
		}
		var o orderBody
		if decode(&o) == nil {
			if _, err := orderRequest("buyer", o); err != nil && highway.ErrorCode(err) != highway.EINVALID {
				t.Fatalf("order %q refused with %v, not EINVALID", body, err)
			}
		}
		var w struct {
			To     string `json:"to"`
			Amount string `json:"amount"`
		}
		if decode(&w) == nil {
			_, _ = amount("amount", w.Amount, false)
		}
		var r struct {
			BuyerBps *int64 `json:"buyer_bps"`
			Note     string `json:"note"`
		}
		_ = decode(&r)
		var st struct {
			Statement string `json:"statement"`
		}
		_ = decode(&st)
	})
}

// A client that goes away mid-request is not a server error: 499, and no
// "internal error" in the log.
func TestClientGoneIsNotAnError(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.Request = httptest.NewRequest(http.MethodGet, "/api/v1/offers", nil).WithContext(ctx)
	s.fail(c, fmt.Errorf("query: %w", context.Canceled))
	if c.Writer.Status() != statusClientClosed || strings.Contains(logs.String(), "internal error") {
		t.Fatalf("status %d, log %q", c.Writer.Status(), logs.String())
	}
}
