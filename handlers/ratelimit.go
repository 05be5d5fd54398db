package handlers

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/accounts"
)

// APILimits bound the JSON API, per minute: requests per account (all of
// its keys together, so minting keys buys nothing), requests per address
// for requests without a key, writes per account (each order placed, even
// one that fails, is stored), and requests with a key that does not
// authenticate, per address (key guessing). Zero takes the default; a
// negative value turns that limit off (benchmarks). Each replica limits on
// its own (docs/api.md).
type APILimits struct {
	PerAccount, PerIP, WritesPerAccount, BadKeysPerIP int
}

// Defaults: room for a busy script (10 requests a second) and a person's
// pages; far from the 500 a second one key managed before.
var defaultAPILimits = APILimits{PerAccount: 600, PerIP: 120, WritesPerAccount: 60, BadKeysPerIP: 30}

type apiLimiters struct {
	perAccount, perIP, writes, badKeys *accounts.Limiter
}

func newAPILimiters(l APILimits) apiLimiters {
	pick := func(v, def int) *accounts.Limiter {
		switch {
		case v < 0:
			return nil // off
		case v == 0:
			v = def
		}
		return accounts.NewLimiter(v, time.Minute)
	}
	d := defaultAPILimits
	return apiLimiters{perAccount: pick(l.PerAccount, d.PerAccount), perIP: pick(l.PerIP, d.PerIP),
		writes: pick(l.WritesPerAccount, d.WritesPerAccount), badKeys: pick(l.BadKeysPerIP, d.BadKeysPerIP)}
}

// apiRate spends one request of the caller's budget (its account's, or
// its address's without a key) and one write for a state-changing
// request, and says where the budget stands as GitHub's and Stripe's APIs
// do: X-RateLimit-Limit, -Remaining and -Reset (Unix seconds). Over it:
// 429 with Retry-After.
func (s *Server) apiRate(c *gin.Context) {
	now := s.now()
	lim, key := s.api.perIP, "ip:"+c.ClientIP()
	if u := currentUser(c); u != nil {
		lim, key = s.api.perAccount, "user:"+u.ID
		if c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead {
			if q := s.api.writes.Take(key, now); !q.OK {
				s.rateLimited(c, q, "Too many writes for this account: at most %d a minute.")
				return
			}
		}
	}
	q := lim.Take(key, now)
	if q.Limit > 0 {
		h := c.Writer.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(q.Limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(q.Remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(q.Reset.Unix(), 10))
	}
	if !q.OK {
		s.rateLimited(c, q, "Too many requests: at most %d a minute.")
		return
	}
	c.Next()
}

// badKeyAllowed counts a request whose key did not authenticate against
// its address; over the budget it has answered 429 and reports false.
func (s *Server) badKeyAllowed(c *gin.Context) bool {
	q := s.api.badKeys.Take("ip:"+c.ClientIP(), s.now())
	if !q.OK {
		s.rateLimited(c, q, "Too many requests with an invalid API key from this address: at most %d a minute.")
		return false
	}
	return true
}

// rateLimited answers 429 with Retry-After for a spent quota.
func (s *Server) rateLimited(c *gin.Context, q accounts.Quota, format string) {
	secs := int((q.Retry + time.Second - 1) / time.Second)
	s.fail(c, &highway.Error{Code: highway.ERATELIMITED, RetryAfter: secs, Message: fmt.Sprintf(format, q.Limit)})
	c.Abort()
}
