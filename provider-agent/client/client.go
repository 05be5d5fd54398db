// Package client is the agent's HTTP client for the marketplace's agent API.
// Every request after enrollment is signed (protocol.Signer) right before it
// is sent, so a retry always carries a fresh timestamp and nonce. The client
// does no retrying itself: callers own the loop and use Backoff between
// attempts, which keeps the heartbeat, poll and log loops independent.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/highway-compute/highway/protocol"
)

// maxResponse bounds what the agent reads from the server: a compromised or
// broken server must not be able to exhaust the provider's memory.
const maxResponse = 1 << 20

// Client talks to one marketplace.
type Client struct {
	// BaseURL is the marketplace root, e.g. https://highway.example.
	BaseURL string
	// HTTP is the transport; nil means one client with sane timeouts,
	// shared by every Client in the process, so connections are kept
	// alive and reused. Do not set an overall Timeout on it: long-polls
	// rely on per-call contexts.
	HTTP *http.Client
	// CallTimeout bounds each call other than the long-poll (which waits
	// its own wait plus a margin); 0 means DefaultCallTimeout. Without it
	// a request the server never answers would stall its loop for good,
	// with nothing logged.
	CallTimeout time.Duration
	// Signer signs requests; nil only before enrollment.
	Signer *protocol.Signer
	// UserAgent identifies the agent build.
	UserAgent string
}

// DefaultCallTimeout bounds a heartbeat, log batch, quote or proof
// upload: generous beside their size, short beside a heartbeat interval's
// worth of offline misses.
const DefaultCallTimeout = 30 * time.Second

// sharedHTTP is the client used when Client.HTTP is nil. One per process:
// a transport per request would open (and, with TLS, handshake) a new
// connection for every heartbeat and leave each idle on the server for
// IdleConnTimeout.
var sharedHTTP = sync.OnceValue(DefaultHTTPClient)

// DefaultHTTPClient has connection-level timeouts but no overall timeout.
func DefaultHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 0, // long-polls wait for headers; contexts bound them
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}}
}

// StatusError is a non-2xx answer, with the server's JSON error if it sent
// one.
type StatusError struct {
	Status int
	Detail protocol.ErrorDetail
	// RetryAfter is the server's Retry-After, if any.
	RetryAfter time.Duration
}

// Error implements error.
func (e *StatusError) Error() string {
	msg := e.Detail.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Detail.Reason != "" {
		return fmt.Sprintf("server answered %d (%s): %s", e.Status, e.Detail.Reason, msg)
	}
	return fmt.Sprintf("server answered %d: %s", e.Status, msg)
}

// Retryable reports whether a failed call may succeed if repeated: network
// errors, timeouts, 5xx, 408, 429, and 401 for a stale timestamp or replay
// (a re-signed retry fixes both). Other 4xx mean the request itself is
// wrong and repeating it changes nothing.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var se *StatusError
	if !errors.As(err, &se) {
		return !errors.Is(err, context.Canceled)
	}
	switch {
	case se.Status >= 500, se.Status == http.StatusRequestTimeout, se.Status == http.StatusTooManyRequests:
		return true
	case se.Status == http.StatusUnauthorized:
		return se.Detail.Reason == "stale_timestamp" || se.Detail.Reason == "replay"
	}
	return false
}

// Register enrolls the agent. It is the one unsigned call: the token in the
// body is the credential.
func (c *Client) Register(ctx context.Context, req protocol.RegisterRequest) (protocol.RegisterResponse, error) {
	var resp protocol.RegisterResponse
	if err := c.do(ctx, http.MethodPost, protocol.PathRegister, req, &resp, false); err != nil {
		return protocol.RegisterResponse{}, fmt.Errorf("register: %w", err)
	}
	if err := resp.Validate(); err != nil {
		return protocol.RegisterResponse{}, fmt.Errorf("register: bad response: %w", err)
	}
	return resp, nil
}

// Heartbeat sends one heartbeat.
func (c *Client) Heartbeat(ctx context.Context, hb protocol.Heartbeat) (protocol.HeartbeatResponse, error) {
	var resp protocol.HeartbeatResponse
	if err := c.do(ctx, http.MethodPost, protocol.PathHeartbeat, hb, &resp, true); err != nil {
		return protocol.HeartbeatResponse{}, fmt.Errorf("heartbeat %d: %w", hb.Seq, err)
	}
	if err := resp.Validate(); err != nil {
		return protocol.HeartbeatResponse{}, fmt.Errorf("heartbeat %d: bad response: %w", hb.Seq, err)
	}
	return resp, nil
}

// Assignments long-polls for work after assignment id `after`, letting the
// server hold the request up to wait.
func (c *Client) Assignments(ctx context.Context, after uint64, wait time.Duration) (protocol.AssignmentsResponse, error) {
	q := url.Values{}
	q.Set("after", strconv.FormatUint(after, 10))
	// The protocol counts whole seconds; rounding a sub-second wait down
	// to 0 would turn the long-poll into a busy loop.
	secs := int((wait + time.Second - 1) / time.Second)
	q.Set("wait", strconv.Itoa(max(secs, 1)))
	// Give the server its wait plus a margin before giving up on it.
	ctx, cancel := context.WithTimeout(ctx, wait+15*time.Second)
	defer cancel()
	var resp protocol.AssignmentsResponse
	if err := c.do(ctx, http.MethodGet, protocol.PathAssignments+"?"+q.Encode(), nil, &resp, true); err != nil {
		return protocol.AssignmentsResponse{}, fmt.Errorf("poll assignments: %w", err)
	}
	if err := resp.Validate(); err != nil {
		return protocol.AssignmentsResponse{}, fmt.Errorf("poll assignments: bad response: %w", err)
	}
	return resp, nil
}

// SendLogs ships one batch of workload output.
func (c *Client) SendLogs(ctx context.Context, b protocol.LogBatch) error {
	if err := c.do(ctx, http.MethodPost, protocol.PathLogs, b, nil, true); err != nil {
		return fmt.Errorf("send logs for %s: %w", b.LeaseID, err)
	}
	return nil
}

// SendQuote answers a quote request.
func (c *Client) SendQuote(ctx context.Context, r protocol.QuoteResponse) error {
	if err := c.do(ctx, http.MethodPost, protocol.PathQuotes, r, nil, true); err != nil {
		return fmt.Errorf("send quote %s: %w", r.RequestID, err)
	}
	return nil
}

// SendVerification posts the proof of a verification challenge.
func (c *Client) SendVerification(ctx context.Context, r protocol.VerificationResponse) error {
	if err := c.do(ctx, http.MethodPost, protocol.PathVerifications, r, nil, true); err != nil {
		return fmt.Errorf("send verification %d: %w", r.AssignmentID, err)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any, sign bool) error {
	if _, ok := ctx.Deadline(); !ok {
		timeout := c.CallTimeout
		if timeout <= 0 {
			timeout = DefaultCallTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode: %w", err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if sign {
		if c.Signer == nil {
			return errors.New("not enrolled: no signing key")
		}
		if err := c.Signer.Sign(req); err != nil {
			return err
		}
	}
	hc := c.HTTP
	if hc == nil {
		hc = sharedHTTP()
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if len(data) > maxResponse {
		return fmt.Errorf("response larger than %d bytes", maxResponse)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		se := &StatusError{Status: resp.StatusCode}
		var eb protocol.ErrorBody
		if json.Unmarshal(data, &eb) == nil {
			se.Detail = eb.Error
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			se.RetryAfter = time.Duration(s) * time.Second
		}
		return se
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// Backoff computes retry delays: exponential from Base up to Max, with
// "equal jitter" (a uniformly random point in the upper half of the
// exponential step), so a fleet that lost the server at the same moment
// does not come back in lock-step, yet every agent still backs off.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
	// Int64N returns a uniform value in [0, n); nil means math/rand/v2.
	// Tests inject a fixed function.
	Int64N func(n int64) int64
}

// DefaultBackoff is 1 s doubling to 2 min.
func DefaultBackoff() Backoff { return Backoff{Base: time.Second, Max: 2 * time.Minute} }

// Delay returns the wait before retry number attempt (0 for the first retry).
func (b Backoff) Delay(attempt int) time.Duration {
	base, maxD := b.Base, b.Max
	if base <= 0 {
		base = time.Second
	}
	if maxD < base {
		maxD = base
	}
	d := base
	for i := 0; i < attempt && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	half := int64(d / 2)
	rnd := b.Int64N
	if rnd == nil {
		rnd = rand.Int64N
	}
	if half <= 0 {
		return d
	}
	return time.Duration(half + rnd(half+1))
}

// DelayFor is Delay, but honours a server's Retry-After when it is longer.
func (b Backoff) DelayFor(attempt int, err error) time.Duration {
	d := b.Delay(attempt)
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > d {
		return se.RetryAfter
	}
	return d
}
