package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/chain/app"
	"github.com/highway-compute/highway/chain/client"
	"github.com/highway-compute/highway/handlers"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/provider-agent/chainlink"
	"github.com/highway-compute/highway/provider-agent/protocol"
)

// Config is the marketplace's configuration, from flags with environment
// fallbacks.
type Config struct {
	Listen         string
	Database       string
	SessionSecret  string
	BaseURL        string
	LogLevel       string
	LogFormat      string
	TrustedProxies string
	DevMode        bool
	// Regions, HeartbeatInterval and OfflineMisses configure the agent API.
	Regions           string
	HeartbeatInterval time.Duration
	OfflineMisses     int
	// The chain: nodes, chain id and epoch length (epoch blocks × block
	// time; it converts prices per GPU-hour to prices per epoch).
	ChainGRPC, ChainRPC, ChainID string
	EpochDuration                time.Duration
	// WalletKey (64 hex chars) seals the managed buyer wallets;
	// ArbiterMnemonic is the arbiter's key (disputes). Environment only:
	// secrets do not belong on command lines.
	WalletKey       string
	ArbiterMnemonic string
	// ReferencePrice is the list price drawn on a model's price chart:
	// MODEL=MICRO_UNITS_PER_GPU_HOUR:SOURCE.
	ReferencePrice string
}

// Main is the marketplace process: Open starts it (tests call it with
// Listen ":0"), Close stops it. main only wires signals around it.
type Main struct {
	Config Config
	// Accounts overrides account costs and limits (tests use cheap hashes).
	Accounts accounts.Config
	// Agents tunes the provider-agent API (heartbeat interval, misses, regions).
	Agents handlers.AgentConfig
	// Broker presets the market's configuration (dev and tests set the
	// chain, faucet, arbiter and PoC parameters here); Open fills in the
	// rest from Config.
	Broker broker.Config
	// Market is the running broker (after Open).
	Market *broker.Broker

	Logger *slog.Logger
	Store  *models.Store

	stdout, stderr io.Writer
	stopBroker     context.CancelFunc
	brokerDone     chan error
	chainClient    *client.Client
	ln             net.Listener
	server         *http.Server
	serveErr       chan error
}

// NewMain returns a Main writing to stdout and stderr.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{stdout: stdout, stderr: stderr, serveErr: make(chan error, 1)}
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

// commonFlags registers the flags serve and dev share.
func commonFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.BaseURL, "base-url", envOr("HIGHWAY_BASE_URL", ""), "public URL of the marketplace; https makes cookies Secure (env HIGHWAY_BASE_URL; default http://<listen>)")
	fs.StringVar(&c.LogLevel, "log-level", envOr("HIGHWAY_LOG_LEVEL", "info"), "debug, info, warn or error (env HIGHWAY_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", envOr("HIGHWAY_LOG_FORMAT", "text"), "text or json (env HIGHWAY_LOG_FORMAT)")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", envOr("HIGHWAY_TRUSTED_PROXIES", ""), "comma-separated proxy IPs/CIDRs whose X-Forwarded-For is trusted (env HIGHWAY_TRUSTED_PROXIES)")
	fs.StringVar(&c.Regions, "regions", envOr("HIGHWAY_REGIONS", ""), "latency probe endpoints agents measure, as id=host:port,... (env HIGHWAY_REGIONS)")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", envDuration("HIGHWAY_HEARTBEAT_INTERVAL", 10*time.Second), "heartbeat interval agents are told to use (env HIGHWAY_HEARTBEAT_INTERVAL)")
	fs.IntVar(&c.OfflineMisses, "offline-misses", envInt("HIGHWAY_OFFLINE_MISSES", 3), "missed heartbeats before a machine is offline, at least 2 (env HIGHWAY_OFFLINE_MISSES)")
	fs.StringVar(&c.ChainGRPC, "chain-grpc", envOr("HIGHWAY_CHAIN_GRPC", ""), "highwayd gRPC address host:port; empty: no chain, nothing can be leased (env HIGHWAY_CHAIN_GRPC)")
	fs.StringVar(&c.ChainRPC, "chain-rpc", envOr("HIGHWAY_CHAIN_RPC", ""), "highwayd CometBFT RPC URL, e.g. http://127.0.0.1:26657 (env HIGHWAY_CHAIN_RPC)")
	fs.StringVar(&c.ChainID, "chain-id", envOr("HIGHWAY_CHAIN_ID", "highway-dev"), "chain id (env HIGHWAY_CHAIN_ID)")
	fs.DurationVar(&c.EpochDuration, "epoch-duration", envDuration("HIGHWAY_EPOCH_DURATION", 10*time.Second), "the chain's epoch: epoch_blocks × block time (env HIGHWAY_EPOCH_DURATION)")
	fs.StringVar(&c.ReferencePrice, "reference-price", envOr("HIGHWAY_REFERENCE_PRICE", defaultReference), "a hyperscaler list price drawn on the price chart, MODEL=MICRO_PER_GPU_HOUR:SOURCE (env HIGHWAY_REFERENCE_PRICE; empty: none)")
	c.WalletKey = os.Getenv("HIGHWAY_WALLET_KEY")
	c.ArbiterMnemonic = os.Getenv("HIGHWAY_ARBITER_MNEMONIC")
}

func envDuration(key string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(key); ok {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func envInt(key string, def int) int {
	if v, ok := os.LookupEnv(key); ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

// defaultReference is AWS's on-demand list price for p5.48xlarge (8 × H100)
// at its launch, $98.32 an hour, per GPU, counted at 1 HWY = 1 USD.
const defaultReference = "H100=12290000:AWS p5.48xlarge on-demand list price at launch (July 2023), $98.32/h ÷ 8 GPUs, at 1 HWY = 1 USD"

// parseReference reads MODEL=MICRO:SOURCE ("" is none).
func parseReference(s string) ([]handlers.ReferencePrice, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	model, rest, ok := strings.Cut(s, "=")
	price, source, ok2 := strings.Cut(rest, ":")
	v, err := strconv.ParseInt(price, 10, 64)
	if !ok || !ok2 || model == "" || source == "" || err != nil || v <= 0 {
		return nil, fmt.Errorf("reference price %q: want MODEL=MICRO_UNITS_PER_GPU_HOUR:SOURCE", s)
	}
	return []handlers.ReferencePrice{{Model: model, PricePerGPUHour: v, Source: source}}, nil
}

// parseRegions reads "id=host:port,id2=host:port".
func parseRegions(s string) ([]protocol.Region, error) {
	var out []protocol.Region
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "=")
		if !ok || id == "" {
			return nil, fmt.Errorf("region %q: want id=host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("region %q: %w", id, err)
		}
		out = append(out, protocol.Region{ID: id, ProbeAddr: addr})
	}
	return out, nil
}

// ParseServeFlags reads the serve command's flags.
func (m *Main) ParseServeFlags(args []string) error {
	fs := flag.NewFlagSet("highway serve", flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	fs.StringVar(&m.Config.Listen, "listen", envOr("HIGHWAY_LISTEN", ":8080"), "address to listen on (env HIGHWAY_LISTEN)")
	fs.StringVar(&m.Config.Database, "database", envOr("HIGHWAY_DATABASE", "highway.db"), "SQLite file path, or postgres://user@host/db (env HIGHWAY_DATABASE)")
	fs.StringVar(&m.Config.SessionSecret, "session-secret", envOr("HIGHWAY_SESSION_SECRET", ""), "secret of at least 32 bytes keying CSRF and flash cookies (env HIGHWAY_SESSION_SECRET; required)")
	commonFlags(fs, &m.Config)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: highway serve [flags]\n\nRuns the marketplace. Flags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
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
	if len(c.SessionSecret) < 32 {
		return errors.New("a session secret of at least 32 bytes is required: set --session-secret or HIGHWAY_SESSION_SECRET (for example: openssl rand -hex 32)")
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another process using the port? choose another with --listen)", c.Listen, err)
	}
	m.ln = ln
	if c.BaseURL == "" {
		c.BaseURL = "http://" + displayAddr(ln.Addr())
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")

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
	if err := m.openBroker(ctx); err != nil {
		m.closeQuietly()
		return err
	}
	var proxies []string
	for _, p := range strings.Split(c.TrustedProxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			proxies = append(proxies, p)
		}
	}
	h, err := handlers.New(handlers.Config{
		Store:          store,
		Accounts:       accounts.New(store, m.Accounts),
		Logger:         m.Logger,
		Secret:         []byte(c.SessionSecret),
		BaseURL:        c.BaseURL,
		DevMode:        c.DevMode,
		Registry:       prometheus.NewRegistry(),
		TrustedProxies: proxies,
		Agents:         m.Agents,
		Broker:         m.Market,
		References:     refs,
	})
	if err != nil {
		m.closeQuietly()
		return err
	}
	m.server = &http.Server{
		Handler:           h,
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
	go m.sweepSessions(ctx)
	m.Logger.Info("highway serving", "url", c.BaseURL, "database", store.Dialect)
	return nil
}

// openBroker connects the chain (when configured), rebuilds the market
// engine from its log and starts the broker's loops.
func (m *Main) openBroker(ctx context.Context) error {
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
	m.Market = b
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.stopBroker, m.brokerDone = cancel, make(chan error, 1)
	go func() { m.brokerDone <- b.Run(bctx) }()
	return nil
}

// sweepSessions deletes expired sessions hourly so the table stays small.
func (m *Main) sweepSessions(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
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
	if m.Market != nil {
		// Live pages and agents' long-polls end now rather than hold
		// the shutdown for its whole grace period.
		m.Market.BeginShutdown()
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
	}
	return errors.Join(serveErr, m.Close())
}

// displayAddr turns a bound address into something a browser can open:
// an unspecified host (":8080", "[::]:8080") becomes localhost.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
