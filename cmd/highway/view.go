package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/highway-compute/highway/broker"
)

// A standby's own view. While this replica stands by it keeps a read-only
// copy of the market (broker.Config.Follower), caught up from the leader's
// log every ViewPoll, and answers the market's reads from it: browse,
// summary, the order and lease pages and their live updates. Only writes
// (and the reads that need the leader's memory: the agents' long-polls,
// the provider console) are forwarded. So reads spread over the replicas,
// and stay up while a takeover rebuilds the engine.

// viewHeader says which replica's view answered a read: a standby sets
// it, so an operator (and the tests) can tell a local answer from a
// forwarded one.
const viewHeader = "X-Highway-View"

// viewStale is how long a view may go without catching up before the
// standby stops answering from it and forwards the reads instead.
const viewStale = 5 * time.Second

// standbyView is the view and the routes over it.
type standbyView struct {
	mu sync.Mutex
	b  *broker.Broker
	h  http.Handler
}

func (v *standbyView) set(b *broker.Broker, h http.Handler) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.b, v.h = b, h
}

// broker is the view, nil while there is none.
func (v *standbyView) broker() *broker.Broker {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.b
}

// current returns the view's routes when it caught up recently, nil when
// there is no view or it is stale.
func (v *standbyView) current() http.Handler {
	v.mu.Lock()
	b, h := v.b, v.h
	v.mu.Unlock()
	if b == nil {
		return nil
	}
	if _, at := b.FollowState(); time.Since(at) > viewStale {
		return nil
	}
	return h
}

// state is the view's last replayed log entry and how long ago it last
// caught up (ok false: no view yet).
func (v *standbyView) state() (seq int64, lag time.Duration, ok bool) {
	v.mu.Lock()
	b := v.b
	v.mu.Unlock()
	if b == nil {
		return 0, 0, false
	}
	seq, at := b.FollowState()
	if at.IsZero() {
		return seq, 0, false
	}
	return seq, time.Since(at), true
}

// runView keeps a view of the market until ctx ends: it loads one (the
// engine rebuilt as a takeover would, without the chain), retrying while
// the database cannot be read, then follows the log.
func (m *Main) runView(ctx context.Context) {
	bc := m.brokerConfig()
	bc.Follower, bc.Chain, bc.Faucet, bc.Arbiter = true, nil, nil, nil
	bc.Logger = m.Logger.With("component", "view")
	var lastWarn time.Time
	for ctx.Err() == nil {
		b, err := broker.New(ctx, bc)
		var h http.Handler
		if err == nil {
			h, err = m.routes(b, "standby")
		}
		if err != nil {
			if ctx.Err() == nil && time.Since(lastWarn) >= 30*time.Second {
				lastWarn = time.Now()
				m.Logger.Warn("standby: could not load a view of the market; forwarding reads meanwhile", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		m.view.set(b, h)
		_ = b.Follow(ctx, m.Config.ViewPoll)
		// Live pages open on the view end now; their browsers reconnect
		// to whatever serves next (this replica, if it took over).
		b.BeginShutdown()
		m.view.set(nil, nil)
	}
}

// localRead reports whether a request is a read the view answers.
func localRead(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	switch p {
	case "/", "/market", "/market/events", "/network",
		"/api/v1/offers", "/api/v1/market/summary", "/api/v1/regions", "/api/v1/orders", "/api/v1/leases":
		return true
	}
	for _, prefix := range []string{"/orders/", "/leases/", "/api/v1/orders/", "/api/v1/leases/"} {
		if id, ok := strings.CutPrefix(p, prefix); ok {
			// One id, nothing after it; the order form is not a read of
			// the market (it shows the wallet, which needs the chain).
			return id != "" && !strings.Contains(id, "/") && id != "new"
		}
	}
	return false
}

// viewMetrics tell an operator how current a standby's view is.
func (m *Main) registerViewMetrics(reg *prometheus.Registry) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "highway_view_log_seq",
			Help: "The last market log entry this standby's view replayed (0 while it has none)."},
			func() float64 { seq, _, _ := m.view.state(); return float64(seq) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "highway_view_lag_seconds",
			Help: "How long since this standby's view last caught up with the market log (0 on the leader; -1 while a standby has no view)."},
			func() float64 {
				if m.Role() == "leader" {
					return 0
				}
				_, lag, ok := m.view.state()
				if !ok {
					return -1
				}
				return lag.Seconds()
			}),
	)
}

// viewStatus describes the view for /readyz: "current" (caught up within
// a second), "behind" (older: reads are still answered from it up to
// viewStale), or "loading".
func (m *Main) viewStatus() map[string]any {
	seq, lag, ok := m.view.state()
	switch {
	case !ok:
		return map[string]any{"state": "loading"}
	case lag <= time.Second:
		return map[string]any{"state": "current", "log_seq": seq, "lag_ms": lag.Milliseconds()}
	default:
		return map[string]any{"state": "behind", "log_seq": seq, "lag_ms": lag.Milliseconds()}
	}
}
