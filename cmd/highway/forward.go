package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/highway-compute/highway/models"
)

// Forwarding. A replica that does not lead still serves every route: the
// market's reads from its own view (view.go), everything else forwarded
// to the leader, which it finds in market_leader (the URL the leader
// advertised when it took over). So a load balancer can spread traffic
// over every replica, and a client that reaches a standby gets the
// leader's answer instead of a retry. The standby's own answers are also
// /healthz, /readyz and /metrics.

// forwardedHeader marks a forwarded request: a replica never forwards one
// again, so a stale leader record (this replica's own URL, or one that
// points back) cannot loop a request between replicas.
const forwardedHeader = "X-Highway-Forwarded-By"

// forwarder holds the leader a standby forwards to and whether it
// answered its last readiness probe.
type forwarder struct {
	mu      sync.Mutex
	target  string
	proxy   *httputil.ReverseProxy
	readyAt time.Time
}

// forwardTransport carries forwarded requests: connection timeouts, none
// on the response (long-polls and event streams stay open on purpose).
var forwardTransport = &http.Transport{
	DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	MaxIdleConnsPerHost: 64,
	IdleConnTimeout:     90 * time.Second,
}

// set points the forwarder at the leader's URL ("" when none is known).
func (f *forwarder) set(target, self string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if target == f.target {
		return
	}
	f.target, f.proxy, f.readyAt = target, nil, time.Time{}
	u, err := url.Parse(target)
	if target == "" || err != nil || u.Host == "" {
		return
	}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// The leader checks a form's Origin against Host, and builds
			// its links from its base URL: the browser's Host goes on.
			pr.Out.Host = pr.In.Host
			// The client's address rides in X-Forwarded-For, which the
			// leader honours when the replicas are among its trusted
			// proxies (docs/deploy.md).
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			pr.SetXForwarded()
			pr.Out.Header.Set(forwardedHeader, self)
		},
		Transport:     forwardTransport,
		FlushInterval: -1, // event streams reach the browser as they are written
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			unavailable(w, "The market's leader did not answer this replica; retry in a moment.")
		},
	}
}

// current is the proxy to the leader, nil when none is known.
func (f *forwarder) current() *httputil.ReverseProxy {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.proxy
}

// ready reports whether the leader answered its readiness probe within
// fresh, and its URL.
func (f *forwarder) ready(fresh time.Duration) (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.proxy != nil && time.Since(f.readyAt) < fresh, f.target
}

func (f *forwarder) probed(target string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.target == target {
		f.readyAt = time.Now()
	}
}

// followLeader keeps the forwarder on the current leader until ctx ends:
// every LeaderPoll it reads market_leader and probes the leader's
// /readyz.
func (m *Main) followLeader(ctx context.Context, store *models.Store) {
	poll := m.Config.LeaderPoll
	probe := &http.Client{Transport: forwardTransport, Timeout: max(time.Second, 4*poll)}
	self := m.holder()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		rec, err := store.Leader(ctx)
		if err == nil {
			target := rec.URL
			if target == m.Config.AdvertiseURL {
				target = "" // this replica's own record, left by its previous run
			}
			m.forward.set(target, self)
			if target != "" {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target+"/readyz", nil)
				if resp, err := probe.Do(req); err == nil {
					_ = resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						m.forward.probed(target)
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readyFresh is how recent the leader's last good probe must be for a
// standby to call itself ready.
func (m *Main) readyFresh() time.Duration { return max(time.Second, 4*m.Config.LeaderPoll) }

// unavailable answers 503 with Retry-After: a takeover is quick, and a
// client that retries reaches a replica that can serve it.
func unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", "1")
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "unavailable", "message": msg}})
}
