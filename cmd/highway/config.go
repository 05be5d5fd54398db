package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/highway-compute/highway/handlers"
	"github.com/highway-compute/highway/protocol"
)

// Configuration of highway serve: flags with HIGHWAY_* environment
// fallbacks, parsed into Config before anything opens.

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

// commonFlags registers the flags serve and dev share.
func commonFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.BaseURL, "base-url", envOr("HIGHWAY_BASE_URL", ""), "public URL of the marketplace; https makes cookies Secure (env HIGHWAY_BASE_URL; default http://<listen>)")
	fs.StringVar(&c.PortsDomain, "ports-domain", envOr("HIGHWAY_PORTS_DOMAIN", ""), "domain whose subdomains serve buyers' forwarded ports, with wildcard DNS to this server; in production a different registrable domain from the marketplace's (env HIGHWAY_PORTS_DOMAIN; dev default ports.localhost; empty: no forwarded ports)")
	fs.StringVar(&c.LogLevel, "log-level", envOr("HIGHWAY_LOG_LEVEL", "info"), "debug, info, warn or error (env HIGHWAY_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", envOr("HIGHWAY_LOG_FORMAT", "text"), "text or json (env HIGHWAY_LOG_FORMAT)")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", envOr("HIGHWAY_TRUSTED_PROXIES", ""), "comma-separated proxy IPs/CIDRs whose X-Forwarded-For is trusted (env HIGHWAY_TRUSTED_PROXIES)")
	fs.StringVar(&c.Regions, "regions", envOr("HIGHWAY_REGIONS", ""), "latency probe endpoints agents measure, as id=host:port,... (env HIGHWAY_REGIONS)")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", envDuration("HIGHWAY_HEARTBEAT_INTERVAL", 10*time.Second), "heartbeat interval agents are told to use (env HIGHWAY_HEARTBEAT_INTERVAL)")
	fs.IntVar(&c.OfflineMisses, "offline-misses", envInt("HIGHWAY_OFFLINE_MISSES", 3), "missed heartbeats before a machine is offline, at least 2 (env HIGHWAY_OFFLINE_MISSES)")
	fs.StringVar(&c.ChainGRPC, "chain-grpc", envOr("HIGHWAY_CHAIN_GRPC", ""), "highwayd gRPC address host:port, or several comma-separated (failover); empty: no chain, nothing can be leased (env HIGHWAY_CHAIN_GRPC)")
	fs.StringVar(&c.ChainRPC, "chain-rpc", envOr("HIGHWAY_CHAIN_RPC", ""), "highwayd CometBFT RPC URL, e.g. http://127.0.0.1:26657, or several comma-separated (failover) (env HIGHWAY_CHAIN_RPC)")
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
	fs.StringVar(&m.Config.Role, "role", envOr("HIGHWAY_ROLE", RoleAuto), "auto: lead when no other replica does, else stand by and take over; leader: lead now or exit; follower: never lead, serve reads from a view and forward the rest (env HIGHWAY_ROLE; replicas need PostgreSQL)")
	fs.StringVar(&m.Config.AdvertiseURL, "advertise-url", envOr("HIGHWAY_ADVERTISE_URL", ""), "where the other replicas reach this one, to forward requests while it leads (env HIGHWAY_ADVERTISE_URL; default http://<listen address>)")
	fs.StringVar(&m.Config.SessionSecret, "session-secret", envOr("HIGHWAY_SESSION_SECRET", ""), "secret of at least 32 bytes keying CSRF and flash cookies (env HIGHWAY_SESSION_SECRET; required)")
	fs.IntVar(&m.Config.HugeHeapMB, "huge-heap-mb", envInt("HIGHWAY_HUGE_HEAP_MB", 1024), "MiB of heap marked for transparent huge pages at start, where the kernel's THP mode is madvise; the matching engine runs faster on them (env HIGHWAY_HUGE_HEAP_MB; 0: off; docs/deploy.md)")
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

// Config is the marketplace's configuration, from flags with environment
// fallbacks.
type Config struct {
	// HugeHeapMB: hugeheap.Prepare's reservation at start (0: none).
	HugeHeapMB     int
	Listen         string
	Database       string
	SessionSecret  string
	BaseURL        string
	LogLevel       string
	LogFormat      string
	TrustedProxies string
	DevMode        bool
	PortsDomain    string
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
	// Role is RoleAuto (default), RoleLeader or RoleFollower (replica.go).
	Role string
	// LeaderPoll is how often a standby tries to take over, and how often
	// the leader checks its hold (default 250 ms and 1 s).
	LeaderPoll, LeaderWatch time.Duration
	// ViewPoll is how often a standby's view catches up with the market
	// log (default 100 ms: a change on the leader reaches the standby's
	// live pages well within a second).
	ViewPoll time.Duration
	// AdvertiseURL is where the other replicas reach this one, to forward
	// to it while it leads (default http://<listen address>, the host's
	// name when listening on every interface).
	AdvertiseURL string
}

// withHost is a bound address as others can open it: an unspecified host
// (":8080", "[::]:8080") becomes anyHost() — localhost for the browser
// on this machine, the host's name for the other replicas.
func withHost(a net.Addr, anyHost func() string) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = anyHost()
	}
	return net.JoinHostPort(host, port)
}

// hostname is this machine's name, or localhost when it has none.
func hostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}
