package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/handlers"
	"github.com/highway-compute/highway/models"
)

// Replicas. Any number of `highway serve` processes may run on one
// PostgreSQL; one leads (runs the broker and serves every route) and the
// others stand by: they answer /healthz, /readyz, /metrics and the
// market's reads themselves (the reads from a view of their own,
// view.go), forward everything else to the leader (forward.go), and
// take over within LeaderPoll plus the engine's rebuild when the leader
// goes (docs/decisions.md, "Replicas").

// Roles a replica may be started with.
const (
	RoleAuto   = "auto"
	RoleLeader = "leader"
	// RoleFollower never tries for the leadership: a read replica (its
	// view) that forwards the rest, for capacity an operator does not want
	// to take over (a small machine, another region).
	RoleFollower = "follower"
)

func (m *Main) checkRole() error {
	c := &m.Config
	switch c.Role {
	case "":
		c.Role = RoleAuto
	case RoleAuto, RoleLeader:
	case RoleFollower:
		if !models.IsPostgresDSN(c.Database) {
			return errors.New("--role follower needs PostgreSQL (--database postgres://…): on SQLite there is one process, which leads")
		}
	default:
		return fmt.Errorf("--role %q: want auto, leader or follower", c.Role)
	}
	if c.LeaderPoll <= 0 {
		c.LeaderPoll = 250 * time.Millisecond
	}
	if c.LeaderWatch <= 0 {
		c.LeaderWatch = time.Second
	}
	if c.ViewPoll <= 0 {
		c.ViewPoll = 100 * time.Millisecond
	}
	return nil
}

// holder names this replica in market_leader and the logs.
func (m *Main) holder() string {
	return fmt.Sprintf("%s pid %d %s", hostname(), os.Getpid(), m.ln.Addr())
}

// Role is "leader" or "standby" (or "deposed", until the process exits).
func (m *Main) Role() string {
	m.leadMu.Lock()
	defer m.leadMu.Unlock()
	switch {
	case m.lead == nil:
		return "standby"
	case m.lead.Err() != nil:
		return "deposed"
	default:
		return "leader"
	}
}

// Fatal reports why this replica must stop (its leadership was lost, or
// a standby could not take over); RunUntil returns it.
func (m *Main) Fatal() <-chan error { return m.fatal }

func (m *Main) fail(err error) {
	select {
	case m.fatal <- err:
	default:
	}
}

// market is the running broker, nil while standing by.
func (m *Main) market() *broker.Broker {
	m.leadMu.Lock()
	defer m.leadMu.Unlock()
	return m.Market
}

// becomeLeader starts the broker (replaying the market's log) and the
// full set of routes, then watches the hold on the market.
func (m *Main) becomeLeader(ctx context.Context, lead *models.Leadership) error {
	if err := m.openBroker(ctx); err != nil {
		return err
	}
	h, err := m.routes(m.market(), "leader")
	if err != nil {
		return err
	}
	m.leadMu.Lock()
	m.lead = lead
	m.leadMu.Unlock()
	m.leaderMetrics.leading(true, lead.Term)
	m.handler.set(h)
	go m.sweepSessions(ctx)
	go m.watchLead(lead, m.stopBroker)
	return nil
}

// routes are the marketplace's handlers over b: the leader's broker, or
// a standby's view (which serves only the reads, standbyHandler).
func (m *Main) routes(b *broker.Broker, role string) (http.Handler, error) {
	c := &m.Config
	var proxies []string
	for _, p := range strings.Split(c.TrustedProxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			proxies = append(proxies, p)
		}
	}
	return handlers.New(handlers.Config{
		Store:          m.Store,
		Accounts:       accounts.New(m.Store, m.Accounts),
		Logger:         m.Logger,
		Secret:         []byte(c.SessionSecret),
		BaseURL:        c.BaseURL,
		DevMode:        c.DevMode,
		PortsDomain:    c.PortsDomain,
		Registry:       m.registry,
		TrustedProxies: proxies,
		Agents:         m.Agents,
		API:            m.API,
		Broker:         b,
		References:     m.refs,
		Nonces:         agentNonces(m.Store),
		Role:           role,
	})
}

// standby waits for the leadership, then takes over.
func (m *Main) standby(ctx context.Context) {
	defer close(m.standbyDone)
	m.Logger.Info("standing by: another replica leads the market; forwarding to it", "holder", m.holder())
	fctx, stopFollowing := context.WithCancel(ctx)
	following := make(chan struct{})
	go func() {
		defer close(following)
		m.followLeader(fctx, m.Store)
	}()
	// The view serves reads until this replica leads (or stops): during
	// a takeover's rebuild too.
	viewDone := make(chan struct{})
	go func() {
		defer close(viewDone)
		m.runView(fctx)
	}()
	defer func() {
		stopFollowing()
		<-following
		<-viewDone
	}()
	if m.Config.Role == RoleFollower {
		<-ctx.Done()
		return
	}
	// A database outage fails every try: said once, then every 30 s.
	var lastWarn time.Time
	lead, err := m.Store.AwaitLeadership(ctx, m.holder(), m.Config.AdvertiseURL, m.Config.LeaderPoll, m.Config.LeaderWatch, func(err error) {
		if time.Since(lastWarn) >= 30*time.Second {
			lastWarn = time.Now()
			m.Logger.Warn("standby: could not try for the leadership; trying again", "err", err)
		}
	})
	if err != nil {
		if ctx.Err() == nil {
			m.fail(fmt.Errorf("standby: %w", err))
		}
		return
	}
	start := time.Now()
	if err := m.becomeLeader(ctx, lead); err != nil {
		lead.Release()
		m.fail(fmt.Errorf("take over the market: %w", err))
		return
	}
	took := time.Since(start)
	m.leaderMetrics.takeover.Set(took.Seconds())
	m.Logger.Info("took over the market", "term", lead.Term, "replay_and_start", took.Round(time.Millisecond))
}

// watchLead stops serving as the leader the moment the hold is lost: the
// store already refuses this process's writes (models.ErrDeposed), the
// routes go back to the standby's answers, the broker stops (its engine
// is no longer the market's: a new leader's is), and Fatal says why.
func (m *Main) watchLead(lead *models.Leadership, stopBroker context.CancelFunc) {
	<-lead.Lost()
	if m.releasing.Load() {
		return
	}
	m.handler.set(m.standbyHandler("deposed"))
	if stopBroker != nil {
		stopBroker()
	}
	m.leaderMetrics.leading(false, 0)
	m.Logger.Error("leadership lost: this replica stops serving the market", "term", lead.Term, "err", lead.Err())
	m.fail(fmt.Errorf("leadership lost: %w", lead.Err()))
}

func (m *Main) releaseLead() {
	m.leadMu.Lock()
	lead := m.lead
	m.leadMu.Unlock()
	if lead != nil {
		m.releasing.Store(true)
		lead.Release()
		m.leaderMetrics.leading(false, 0)
	}
}

// swapHandler is the handler served: the standby's, then the full
// routes once this replica leads.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

// current is the handler being served.
func (s *swapHandler) current() http.Handler { return *s.h.Load() }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.current().ServeHTTP(w, r)
}

// standbyHandler answers while this replica does not lead: /healthz,
// /readyz and /metrics itself, the market's reads from its view while
// that is current (view.go), everything else forwarded to the leader
// (forward.go) while standing by; all refused with 503 once deposed (the
// process is about to exit).
func (m *Main) standbyHandler(role string) http.Handler {
	metrics := promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON := func(status int, v any) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(v)
		}
		switch r.URL.Path {
		case "/healthz":
			writeJSON(http.StatusOK, map[string]string{"status": "ok", "role": role})
			return
		case "/readyz":
			// Ready while the leader answers: a balancer may then send
			// this replica anything; reads are answered from its view
			// while that is current, the rest forwarded.
			body := map[string]any{"status": "unavailable", "role": role, "view": m.viewStatus()}
			if ok, leader := m.forward.ready(m.readyFresh()); ok && role == "standby" {
				body["status"], body["leader"] = "ok", leader
				writeJSON(http.StatusOK, body)
				return
			}
			writeJSON(http.StatusServiceUnavailable, body)
			return
		case "/metrics":
			metrics.ServeHTTP(w, r)
			return
		}
		// A forwarded port's tunnels are the leader's (its broker asks the
		// agents), so its requests always go there.
		if role == "standby" && localRead(r) && !m.Config.onPortsHost(r.Host) {
			if h := m.view.current(); h != nil {
				w.Header().Set(viewHeader, "standby")
				h.ServeHTTP(w, r)
				return
			}
		}
		if role == "standby" && r.Header.Get(forwardedHeader) == "" {
			if p := m.forward.current(); p != nil {
				m.leaderMetrics.forwarded.Inc()
				p.ServeHTTP(w, r)
				return
			}
		}
		unavailable(w, "This replica is standing by for the market's leader; retry in a moment.")
	})
}

// leaderMetrics tell an operator which replica leads and how the last
// takeover went.
type leaderMetrics struct {
	leader, term, takeover prometheus.Gauge
	forwarded              prometheus.Counter
}

func newLeaderMetrics(reg *prometheus.Registry) leaderMetrics {
	lm := leaderMetrics{
		leader:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "highway_leader", Help: "1 while this replica leads the market (runs the broker), else 0."}),
		term:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "highway_leader_term", Help: "The leadership term this replica holds (0: none)."}),
		takeover:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "highway_leader_takeover_seconds", Help: "How long this replica's takeover took, from winning the election to serving (engine replay included)."}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{Name: "highway_forwarded_requests_total", Help: "Requests this replica forwarded to the leader while standing by."}),
	}
	reg.MustRegister(lm.leader, lm.term, lm.takeover, lm.forwarded)
	return lm
}

// leading records whether this replica leads, and its term (0 on
// SQLite, where there is no election).
func (lm leaderMetrics) leading(on bool, term int64) {
	v := 0.0
	if on {
		v = 1
	}
	lm.leader.Set(v)
	lm.term.Set(float64(term))
}
