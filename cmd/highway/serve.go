package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/chain/app"
	"github.com/highway-compute/highway/chain/client"
	"github.com/highway-compute/highway/handlers"
	"github.com/highway-compute/highway/hugeheap"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/provider-agent/chainlink"
)

// Main is the marketplace process: Open starts it (tests call it with
// Listen ":0"), Close stops it. main only wires signals around it.
type Main struct {
	Config Config
	// Accounts overrides account costs and limits (tests use cheap hashes).
	Accounts accounts.Config
	// Agents tunes the provider-agent API (heartbeat interval, misses, regions).
	Agents handlers.AgentConfig
	// API overrides the JSON API's rate limits (benchmarks lift them).
	API handlers.APILimits
	// Broker presets the market's configuration (dev and tests set the
	// chain, faucet, arbiter and PoC parameters here); Open fills in the
	// rest from Config.
	Broker broker.Config
	// Market is the running broker (after Open).
	Market *broker.Broker

	Logger *slog.Logger
	Store  *models.Store

	stdout, stderr io.Writer
	// The replica's state (replica.go): the handler that is served (the
	// standby's until this replica leads), its hold on the market, and the
	// standby loop.
	handler       swapHandler
	registry      *prometheus.Registry
	lead          *models.Leadership
	leadMu        sync.Mutex
	fatal         chan error
	stopStandby   context.CancelFunc
	standbyDone   chan struct{}
	forward       forwarder
	view          standbyView
	leaderMetrics leaderMetrics
	releasing     atomic.Bool
	refs          []handlers.ReferencePrice
	stopBroker    context.CancelFunc
	brokerDone    chan error
	chainClient   *client.Client
	ln            net.Listener
	server        *http.Server
	serveErr      chan error
}

// NewMain returns a Main writing to stdout and stderr.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{stdout: stdout, stderr: stderr, serveErr: make(chan error, 1), fatal: make(chan error, 1)}
}

// Open validates the configuration, opens and migrates the database, and
// starts serving in the background.
func (m *Main) Open(ctx context.Context) error {
	c := &m.Config
	if m.Logger == nil {
		l, err := newLogger(m.stderr, c.LogLevel, c.LogFormat)
		if err != nil {
			return err
		}
		m.Logger = l
	}
	if c.HugeHeapMB > 0 {
		// Before anything builds the engine's book (docs/deploy.md).
		r := hugeheap.Prepare(c.HugeHeapMB << 20)
		m.Logger.Info("heap huge pages", "thp_mode", r.Mode, "advised_mib", r.Advised>>20, "note", r.Why)
	}
	if len(c.SessionSecret) < 32 {
		return errors.New("a session secret of at least 32 bytes is required: set --session-secret or HIGHWAY_SESSION_SECRET (for example: openssl rand -hex 32)")
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another process using the port? choose another with --listen)", c.Listen, err)
	}
	m.ln = ln
	if c.BaseURL == "" {
		c.BaseURL = "http://" + withHost(ln.Addr(), func() string { return "localhost" })
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if err := c.checkPortsDomain(); err != nil {
		_ = ln.Close()
		return err
	}
	if c.AdvertiseURL == "" {
		c.AdvertiseURL = "http://" + withHost(ln.Addr(), hostname)
	}
	c.AdvertiseURL = strings.TrimRight(c.AdvertiseURL, "/")

	store, err := models.Open(ctx, c.Database)
	if err != nil {
		_ = ln.Close()
		return err
	}
	m.Store = store
	if err := store.Migrate(ctx, m.Logger); err != nil {
		m.closeQuietly()
		return err
	}
	regions, err := parseRegions(c.Regions)
	if err != nil {
		m.closeQuietly()
		return err
	}
	if m.Agents.Regions == nil {
		m.Agents.Regions = regions
	}
	if m.Agents.HeartbeatInterval == 0 {
		m.Agents.HeartbeatInterval = c.HeartbeatInterval
	}
	if m.Agents.OfflineMisses == 0 {
		m.Agents.OfflineMisses = c.OfflineMisses
	}
	refs, err := parseReference(c.ReferencePrice)
	if err != nil {
		m.closeQuietly()
		return err
	}
	m.refs = refs
	if err := m.checkRole(); err != nil {
		m.closeQuietly()
		return err
	}
	m.registry = prometheus.NewRegistry()
	m.leaderMetrics = newLeaderMetrics(m.registry)
	m.registerViewMetrics(m.registry)
	m.handler.set(m.standbyHandler("standby"))
	// One replica leads (runs the broker); the others stand by and take
	// over when it goes (replica.go). Alone, or on SQLite, this one leads.
	var lead *models.Leadership
	if c.Role != RoleFollower {
		lead, err = store.TryLeadership(ctx, m.holder(), c.AdvertiseURL, c.LeaderWatch)
		if err != nil {
			m.closeQuietly()
			return err
		}
	}
	if lead == nil && c.Role == RoleLeader {
		m.closeQuietly()
		return errors.New("--role leader: another replica leads the market; stop it first, or start this one with --role auto to stand by")
	}
	if lead != nil {
		if err := m.becomeLeader(ctx, lead); err != nil {
			lead.Release()
			m.closeQuietly()
			return err
		}
	}
	m.server = &http.Server{
		Handler:           &m.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() {
		if err := m.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.serveErr <- err
		}
		close(m.serveErr)
	}()
	if lead == nil {
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		m.stopStandby, m.standbyDone = cancel, make(chan struct{})
		go m.standby(sctx)
	}
	m.Logger.Info("highway serving", "url", c.BaseURL, "database", store.Dialect, "role", m.Role())
	return nil
}

// brokerConfig is the market's configuration: m.Broker's presets, the
// rest from Config. The engine's part (regions, models, timings) must be
// the same on every replica, leader or view, for the log to replay.
func (m *Main) brokerConfig() broker.Config {
	c := &m.Config
	bc := m.Broker
	bc.Store, bc.Logger = m.Store, m.Logger.With("component", "broker")
	bc.HeartbeatInterval, bc.OfflineMisses = m.Agents.HeartbeatInterval, m.Agents.OfflineMisses
	if bc.Regions == nil {
		for _, r := range m.Agents.Regions {
			bc.Regions = append(bc.Regions, r.ID)
		}
		if len(bc.Regions) == 0 {
			// No probe endpoints: one region for everything, so the
			// market still works on a single machine.
			bc.Regions = []string{"local"}
		}
	}
	if bc.EpochDuration == 0 {
		bc.EpochDuration = c.EpochDuration
	}
	return bc
}

// openBroker connects the chain (when configured), rebuilds the market
// engine from its log and starts the broker's loops.
func (m *Main) openBroker(ctx context.Context) error {
	c := &m.Config
	bc := m.brokerConfig()
	// Standbys serving pages from their own view reload them when the
	// leader's change count moves; on SQLite there are none.
	bc.PublishChanges = m.Store.Dialect == models.DialectPostgres
	// In dev a webhook receiver is a local process; in production the
	// marketplace never calls into its own network.
	bc.AllowPrivateWebhooks = c.DevMode
	if bc.Chain == nil && c.ChainGRPC != "" {
		cl, err := client.Dial(client.Config{GRPC: c.ChainGRPC, RPC: c.ChainRPC, ChainID: c.ChainID, GasPrice: "0" + app.BondDenom})
		if err != nil {
			return fmt.Errorf("connect to the chain at %s: %w", c.ChainGRPC, err)
		}
		m.chainClient = cl
		bc.Chain = cl
	}
	if bc.Chain != nil && bc.WalletKey == nil {
		key, err := hex.DecodeString(c.WalletKey)
		if err != nil || len(key) != 32 {
			return errors.New("HIGHWAY_WALLET_KEY must be 64 hex characters (32 bytes) when a chain is configured: it seals the buyers' wallet keys (for example: openssl rand -hex 32)")
		}
		bc.WalletKey = key
	}
	if bc.Arbiter == nil && c.ArbiterMnemonic != "" {
		key, err := chainlink.KeyFromMnemonic(c.ArbiterMnemonic)
		if err != nil {
			return fmt.Errorf("HIGHWAY_ARBITER_MNEMONIC: %w", err)
		}
		bc.Arbiter = client.KeySigner{Key: key}
	}
	b, err := broker.New(ctx, bc)
	if err != nil {
		return err
	}
	m.leadMu.Lock()
	m.Market = b
	m.leadMu.Unlock()
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.stopBroker, m.brokerDone = cancel, make(chan error, 1)
	go func() { m.brokerDone <- b.Run(bctx) }()
	return nil
}

// sweepSessions deletes expired sessions hourly and spent agent nonces
// every minute, so both tables stay small.
func (m *Main) sweepSessions(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	// Agent nonces live 2 × the clock skew (minutes) and come with every
	// agent request, so they are pruned every minute.
	nonces := time.NewTicker(time.Minute)
	defer nonces.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := m.Store.DeleteExpiredSessions(ctx, time.Now()); err != nil {
				m.Logger.Warn("sweep sessions", "err", err)
			} else if n > 0 {
				m.Logger.Info("expired sessions removed", "count", n)
			}
		case <-nonces.C:
			if _, err := m.Store.PruneNonces(ctx, time.Now()); err != nil {
				m.Logger.Warn("prune agent nonces", "err", err)
			}
		}
	}
}

// URL is the marketplace's base URL (with the real port when listening on :0).
func (m *Main) URL() string { return m.Config.BaseURL }

// Addr is the bound listen address.
func (m *Main) Addr() net.Addr { return m.ln.Addr() }

// Close stops accepting requests, lets in-flight ones finish (up to 10 s),
// then closes the database.
func (m *Main) Close() error {
	var errs []error
	if m.stopStandby != nil {
		m.stopStandby()
		<-m.standbyDone
		m.stopStandby = nil
	}
	if market := m.market(); market != nil {
		// Live pages and agents' long-polls end now rather than hold
		// the shutdown for its whole grace period.
		market.BeginShutdown()
	}
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.server.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	} else if m.ln != nil {
		_ = m.ln.Close()
	}
	if m.stopBroker != nil {
		m.stopBroker()
		if err := <-m.brokerDone; err != nil {
			errs = append(errs, err)
		}
		m.stopBroker = nil
	}
	// Handing the leadership back now lets a standby take over at once.
	m.releaseLead()
	if m.chainClient != nil {
		_ = m.chainClient.Close()
	}
	if m.Store != nil {
		if err := m.Store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Main) closeQuietly() {
	if m.stopBroker != nil {
		m.stopBroker()
		if err := <-m.brokerDone; err != nil && m.Logger != nil {
			m.Logger.Warn("broker stopped with an error", "err", err)
		}
		m.stopBroker = nil
	}
	if m.ln != nil {
		_ = m.ln.Close()
	}
	if m.Store != nil {
		_ = m.Store.Close()
	}
}

// RunUntil opens the marketplace and serves until ctx ends (SIGINT or
// SIGTERM) or the server fails, then shuts down gracefully.
func (m *Main) RunUntil(ctx context.Context) error {
	if err := m.Open(ctx); err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
		m.Logger.Info("shutting down")
	case serveErr = <-m.serveErr:
	case serveErr = <-m.fatal:
		// Leadership lost: exit, so a supervisor restarts this replica
		// as a standby with a fresh view of the market.
		m.Logger.Error("stopping", "err", serveErr)
	}
	return errors.Join(serveErr, m.Close())
}

// agentNonces picks where agent-request nonces live: in the database on
// PostgreSQL, so every replica refuses a request replayed at another; in
// memory on SQLite, which one process serves (and where a database write
// per agent request would only cost).
func agentNonces(store *models.Store) protocol.NonceStore {
	if store.Dialect == models.DialectPostgres {
		return store.Nonces()
	}
	return nil
}
