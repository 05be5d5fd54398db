// Package handlers is the HTTP surface: pages, the JSON API and health
// endpoints, in one route table (routes.go). Handlers stay thin: parse,
// call a service, render a view-model. Errors go through one place
// (errors.go) that maps codes to status, page and JSON body.
package handlers

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
)

// Config is what the HTTP layer needs from main.
type Config struct {
	Store    *models.Store
	Accounts *accounts.Service
	Logger   *slog.Logger
	// Secret keys CSRF tokens and flash cookies; at least 32 bytes.
	Secret []byte
	// BaseURL is the public URL; https makes cookies Secure.
	BaseURL string
	DevMode bool
	// Role is the replica's role, shown by /healthz and /readyz ("" for
	// none).
	Role string
	// Registry receives the HTTP metrics; nil means a new private one.
	Registry *prometheus.Registry
	// TrustedProxies are the addresses whose X-Forwarded-For is believed
	// for the client IP (rate limits key on it). Empty trusts none.
	TrustedProxies []string
	// Agents tunes the provider-agent API.
	Agents AgentConfig
	// API bounds the JSON API's request rates (docs/api.md).
	API APILimits
	// Nonces remembers signed agent requests against replay; nil keeps
	// them in this process's memory (one replica). Replicas share one
	// (models.Store.Nonces on PostgreSQL).
	Nonces protocol.NonceStore
	// Broker is the market: offers, orders, leases, agents' work. Required.
	Broker *broker.Broker
	// References are list prices drawn on the price charts.
	References []ReferencePrice
	// PortsDomain is the domain whose subdomains serve forwarded ports
	// (<slug>.<PortsDomain>, ports.go); "" forwards none.
	PortsDomain string
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Server holds the handlers' dependencies.
type Server struct {
	store         *models.Store
	accounts      *accounts.Service
	log           *slog.Logger
	secret        []byte
	secureCookies bool
	devMode       bool
	baseURL       string
	registry      *prometheus.Registry
	role          string
	metrics       *httpMetrics

	broker             *broker.Broker
	references         []ReferencePrice
	agentCfg           AgentConfig
	agentVerifier      *protocol.Verifier
	agentRegisterLimit *accounts.Limiter
	agentLimit         *accounts.Limiter
	faucetLimit        *accounts.Limiter
	api                apiLimiters
	streams            *streamCaps
	now                func() time.Time
	portsDomain        string
	portProxy          *httputil.ReverseProxy
}

// New builds the HTTP handler with every route.
func New(cfg Config) (http.Handler, error) {
	if len(cfg.Secret) < 32 {
		return nil, errors.New("handlers: session secret must be at least 32 bytes")
	}
	if cfg.Store == nil || cfg.Accounts == nil || cfg.Broker == nil {
		return nil, errors.New("handlers: store, accounts and broker are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	m, err := newHTTPMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{
		store:         cfg.Store,
		accounts:      cfg.Accounts,
		log:           cfg.Logger,
		secret:        cfg.Secret,
		secureCookies: strings.HasPrefix(cfg.BaseURL, "https://"),
		baseURL:       cfg.BaseURL,
		devMode:       cfg.DevMode,
		registry:      cfg.Registry,
		role:          cfg.Role,
		metrics:       m,
		agentCfg:      cfg.Agents,
		broker:        cfg.Broker,
		references:    cfg.References,
		// 30 registrations a minute per IP: enough for a fleet being
		// installed, too few to brute-force 256-bit tokens.
		agentRegisterLimit: accounts.NewLimiter(30, time.Minute),
		faucetLimit:        accounts.NewLimiter(1, time.Hour),
		// 16 live pages per address, 4096 in all.
		streams:     newStreamCaps(16, 4096),
		now:         cfg.Now,
		portsDomain: strings.TrimSuffix(strings.ToLower(strings.TrimSpace(cfg.PortsDomain)), "."),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.agentCfg.defaults()
	s.api = newAPILimiters(cfg.API)
	s.agentLimit = accounts.NewLimiter(s.agentCfg.RequestsPerMinute, time.Minute)
	nonces := cfg.Nonces
	if nonces == nil {
		nonces = protocol.NewMemoryNonceStore(1 << 20)
	}
	s.agentVerifier = &protocol.Verifier{Keys: protocol.KeyStoreFunc(cfg.Broker.AgentKey), Nonces: nonces,
		Batch: protocol.SharedSigBatcher()}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	// By default gin believes X-Forwarded-For from anyone, which would let a
	// client pick its own rate-limit key.
	if err := e.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	s.routes(e)
	if s.portsDomain == "" {
		return e, nil
	}
	s.portProxy = s.newPortProxy()
	// The ports domain's hosts never reach the marketplace's routes and
	// middleware: its security headers and body limit are the workload's
	// business there.
	return &hostSplit{s: s, site: e}, nil
}
