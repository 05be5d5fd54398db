// Package broker is the order-to-lease service. It runs the matching
// engine's single writer (market.Engine behind one mutex, its input log
// persisted through models and replayed at start), feeds it the live
// capacity agents report, turns matches into on-chain leases (a quote
// signed by the provider's agent, MsgCreateLease signed with the buyer's
// managed wallet), hands work to agents, and follows the chain's escrow
// events to keep the marketplace's tables in step with the money.
//
// One broker runs per marketplace: the engine is single-writer by design
// (see docs/deploy.md). The other replicas each keep a read-only Broker
// (Config.Follower) that replays the writer's log and serves the market's
// reads (follow.go).
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/chain/client"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/poc"
)

// Chain is what the broker needs from the chain; *client.Client implements it.
type Chain interface {
	ChainID() string
	Send(ctx context.Context, s client.Signer, msgs ...sdk.Msg) (*client.TxResult, error)
	Lease(ctx context.Context, id uint64) (escrowtypes.Lease, error)
	EscrowParams(ctx context.Context) (escrowtypes.Params, error)
	Balance(ctx context.Context, addr sdk.AccAddress, denom string) (math.Int, error)
	Follow(ctx context.Context, from int64, opts client.FollowOptions, fn func(client.Block) error) error
	LatestHeight(ctx context.Context) (int64, time.Time, error)
}

// Config configures a Broker.
type Config struct {
	Store  Store
	Chain  Chain // nil: the market lists and matches, but nothing can be leased
	Logger *slog.Logger
	// Regions are the catalog regions (ids), in a fixed order: the engine's
	// log depends on it, so changing the list needs a fresh log.
	Regions []string
	// Models are the GPU models that may be listed; default: every class
	// poc calibrates.
	Models            []string
	HeartbeatInterval time.Duration
	OfflineMisses     int
	// ReservationTTL is how long a match may take to become a lease on
	// chain (quote from the agent + one transaction); default 60 s.
	ReservationTTL time.Duration
	// MaxOpenOrders is how many open orders (resting, or matched with the
	// lease not yet on chain) one buyer may have at once; default 100.
	MaxOpenOrders int
	// EpochDuration is the chain's epoch (epoch blocks × block time); it
	// converts prices per GPU-hour to prices per epoch.
	EpochDuration time.Duration
	// QuoteTTL is how long a quote stays valid (≤ the chain's max_quote_ttl).
	QuoteTTL time.Duration
	// Denom is the chain denom leases are paid in.
	Denom string
	// WalletKey seals the managed wallets' keys (32 bytes).
	WalletKey []byte
	// Faucet, when set, funds buyers in dev mode (FaucetAmount each time,
	// only to a wallet holding less than FaucetCap: default 5 × the amount;
	// the marketplace also allows one grant per account per hour).
	Faucet       client.Signer
	FaucetAmount highway.Amount
	FaucetCap    highway.Amount
	// Arbiter signs MsgResolveDispute; nil: disputes cannot be resolved here.
	Arbiter client.Signer
	// VerifyParams and VerifyWork shape the verification PoC a machine
	// must clear before it is listed (the chain's PoC params in practice).
	VerifyParams poc.Params
	VerifyWork   time.Duration
	// SnapshotEvery is how often the market is recorded for the charts
	// (default one minute).
	SnapshotEvery time.Duration
	// CheckpointEvery is how many logged commands pass between checkpoints
	// of the engine (default 10 000): a start or takeover restores the
	// newest and replays at most about this many commands.
	CheckpointEvery int
	// Follower makes a read-only view of the market for a replica that
	// does not lead: Follow keeps it current from the leader's log, and
	// every write is refused with ErrFollower (follow.go).
	Follower bool
	// PublishChanges has Run record the change count in the database
	// after each change, for the followers' open pages (on PostgreSQL,
	// where there can be followers).
	PublishChanges bool
	// AutoExtendBefore is how long before its end a lease with auto-extend
	// on is extended (default 15 minutes), and AutoExtendEvery how often
	// the leader looks (default 30 s).
	AutoExtendBefore time.Duration
	AutoExtendEvery  time.Duration
	// AllowPrivateWebhooks lets webhooks point at loopback and private
	// addresses (dev mode and tests, with a local receiver).
	AllowPrivateWebhooks bool
	// WebhookEvery is how often due webhook deliveries are sent (default
	// 2 s), WebhookRetryBase the first retry's wait, doubling after each
	// failure (default 30 s), and AlertEvery how often the leader looks
	// for leases about to end and low balances (default 30 s).
	WebhookEvery, WebhookRetryBase, AlertEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Broker is the marketplace's single writer. Create it with New, start its
// loops with Run.
type Broker struct {
	cfg   Config
	store Store
	log   *slog.Logger
	now   func() time.Time

	// buyerLocks serialise each buyer's order placements (buyerLock).
	buyerLocks [64]sync.Mutex

	// The chain's proof window, read once a minute for the order page.
	paramsMu  sync.Mutex
	paramsAt  time.Time
	proofWork time.Duration

	// mu guards everything below; browsing takes it for reading only, so
	// page and API reads run in parallel between writes.
	mu sync.RWMutex
	// w is the engine and its command log (engine.go).
	w writer
	// stats are the network figures of the last snapshot (stats.go).
	stats    statsCache
	machines map[string]*machineState
	byModel  map[string]*modelIndex                   // listed model → its browse rows
	prices   map[string]map[string]int64              // provider → model → ask
	spot     map[string]map[string]InterruptibleTerms // provider → model → interruptible terms (spot.go)
	flights  map[string]*flight                       // order id → the live order's state (flight.go)
	// extensions are extension quote requests waiting for their agent's
	// answer (request id →), extending the leases being extended now
	// (extend.go).
	extensions map[string]*extension
	extending  map[string]bool
	verifies   map[uint64]*challenge
	shells     shellHub          // open shell sessions (shell.go)
	dials      *accounts.Limiter // new port tunnels per lease (forward.go)
	// preempting are the orders whose preemption is being recorded now
	// (spot.go).
	preempting sync.Map
	changed    chan struct{} // closed and replaced on every market change
	// uptimeDirty are the machines with online time credited since the
	// last flush; uptimePruned is the day old uptime rows were last pruned.
	uptimeDirty  map[string]struct{}
	uptimePruned int32
	// generation counts the changes, so a page rendered at one generation
	// can tell whether it missed any before its event stream opened.
	generation atomic.Uint64
	// depthCache holds the latest depth per model and region (depth.go).
	depthMu    sync.Mutex
	depthCache map[depthKey]depthEntry
	// caughtUp is when a follower last caught up with the log;
	// unannounced, since when it has replayed changes the leader's
	// published count has not announced yet (zero: none).
	caughtUp, unannounced time.Time
	stopping              chan struct{} // closed by BeginShutdown
	stopOnce              sync.Once

	// agents caches each agent's key, machine and heartbeat continuity.
	agents *agentCache
	// mail is the agents' mailbox: assignments, quote requests, beats.
	mail *mailbox
	// reported is each lease's workload state as last written, so the
	// flush writes (and reads) only changes, not every running lease every
	// second. Only flushBeats touches it.
	reported map[string]string
}

// New loads the engine from its log and the machines and prices from the
// database.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	if cfg.Store == nil {
		return nil, errors.New("broker: Store is required")
	}
	if len(cfg.Regions) == 0 {
		return nil, errors.New("broker: at least one region is required")
	}
	if len(cfg.Models) == 0 {
		for _, c := range poc.ClassRates() {
			cfg.Models = append(cfg.Models, c.Class)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.HeartbeatInterval, 10*time.Second)
	def(&cfg.ReservationTTL, 60*time.Second)
	def(&cfg.EpochDuration, time.Hour)
	def(&cfg.QuoteTTL, 2*time.Minute)
	def(&cfg.VerifyWork, 5*time.Second)
	def(&cfg.SnapshotEvery, time.Minute)
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 10_000
	}
	if cfg.MaxOpenOrders <= 0 {
		cfg.MaxOpenOrders = DefaultMaxOpenOrders
	}
	if cfg.OfflineMisses < 2 {
		cfg.OfflineMisses = 3
	}
	if cfg.WebhookEvery <= 0 {
		cfg.WebhookEvery = 2 * time.Second
	}
	if cfg.WebhookRetryBase <= 0 {
		cfg.WebhookRetryBase = 30 * time.Second
	}
	if cfg.AlertEvery <= 0 {
		cfg.AlertEvery = 30 * time.Second
	}
	if cfg.AutoExtendBefore <= 0 {
		cfg.AutoExtendBefore = 15 * time.Minute
	}
	if cfg.AutoExtendEvery <= 0 {
		cfg.AutoExtendEvery = 30 * time.Second
	}
	if cfg.Denom == "" {
		cfg.Denom = "uhwy"
	}
	if cfg.VerifyParams.Dim == 0 {
		cfg.VerifyParams = poc.DefaultParams()
	}
	if cfg.Chain != nil && len(cfg.WalletKey) != 32 {
		return nil, errors.New("broker: WalletKey must be 32 bytes")
	}
	b := &Broker{
		cfg: cfg, store: cfg.Store, log: cfg.Logger, now: cfg.Now,
		machines: map[string]*machineState{}, byModel: map[string]*modelIndex{}, prices: map[string]map[string]int64{}, spot: map[string]map[string]InterruptibleTerms{},
		flights: map[string]*flight{}, extensions: map[string]*extension{}, extending: map[string]bool{},
		verifies: map[uint64]*challenge{}, shells: shellHub{sessions: map[string]*ShellSession{}}, dials: accounts.NewLimiter(maxDialsPerMinute, time.Minute), uptimeDirty: map[string]struct{}{}, changed: make(chan struct{}),
		stopping: make(chan struct{}), reported: map[string]string{}, mail: newMailbox(cfg.Store),
	}
	b.agents = newAgentCache(cfg.Store, cfg.Now)
	if err := b.load(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *Broker) engineConfig() market.Config {
	return market.Config{
		Models: b.cfg.Models, Regions: b.cfg.Regions,
		HeartbeatIntervalMs: b.cfg.HeartbeatInterval.Milliseconds(), MissedBeats: int64(b.cfg.OfflineMisses),
		ReservationTTLms: b.cfg.ReservationTTL.Milliseconds(),
	}
}

// load rebuilds the engine (its newest checkpoint, then the log after it)
// and reads machines, prices and in-flight orders.
func (b *Broker) load(ctx context.Context) error {
	r, err := b.rebuild(ctx)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	e := r.engine
	b.w.engine, b.w.seq, b.w.checkpointSeq = e, r.seq, r.checkpoint
	b.w.nextCheckpoint = r.checkpoint + int64(b.cfg.CheckpointEvery)
	prices, err := b.store.Prices(ctx)
	if err != nil {
		return err
	}
	for _, p := range prices {
		b.setPriceLocked(p.ProviderID, p.Model, p.PricePerGPUHour)
		b.setSpotLocked(p.ProviderID, p.Model, InterruptibleTerms{Floor: p.SpotFloor, NoticeMs: p.NoticeS * 1000})
	}
	ms, err := b.store.AllMachines(ctx)
	if err != nil {
		return err
	}
	for i := range ms {
		st := b.addMachineLocked(&ms[i])
		if a, err := b.store.AgentOfMachine(ctx, ms[i].ID); err == nil {
			st.agentID = a.ID
		}
		st.suspended = st.suspended || e.ProviderSuspended(st.providerID)
		b.adoptListingLocked(st)
	}
	if err := b.loadUptimeLocked(ctx); err != nil {
		return err
	}
	counts, err := b.store.EpochCounts(ctx, b.now().Add(-reliabilityWindow), "")
	if err != nil {
		return err
	}
	b.setEpochCountsLocked(counts)
	if err := b.mail.load(ctx); err != nil {
		return err
	}
	// Open orders may still match. Orders that were between match and
	// lease when the process stopped lost their quote round-trip: no agent
	// is asked again (agentID is empty), their reservations lapse on the
	// engine's clock and the tick marks them failed. Leases keep their holds.
	for _, st := range []string{models.OrderOpen, models.OrderMatched} {
		os, err := b.store.OrdersWithStatus(ctx, st)
		if err != nil {
			return err
		}
		for i := range os {
			b.flights[os[i].ID] = &flight{order: os[i]}
		}
	}
	b.log.Info("market engine rebuilt", "checkpoint", r.checkpoint, "commands_replayed", r.replayed, "machines", len(ms), "stats", fmt.Sprintf("%+v", e.Stats()))
	return nil
}

// Run runs the broker's loops (engine clock, log flush, chain indexer)
// until ctx ends.
func (b *Broker) Run(ctx context.Context) error {
	if b.cfg.Follower {
		return ErrFollower
	}
	b.recoverPreemptions(ctx)
	var wg sync.WaitGroup
	loops := []func(context.Context){b.tickLoop, b.snapshotLoop, b.alertLoop}
	if b.cfg.Chain != nil {
		loops = append(loops, b.indexLoop, b.autoExtendLoop, b.preemptLoop)
	}
	if b.cfg.PublishChanges {
		loops = append(loops, b.publishLoop)
	}
	for _, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx)
		}()
	}
	<-ctx.Done()
	wg.Wait()
	b.flushBeats(context.WithoutCancel(ctx))
	b.flushUptime(context.WithoutCancel(ctx))
	b.mu.Lock()
	err := b.flushLocked(context.WithoutCancel(ctx))
	b.mu.Unlock()
	b.w.checkpoints.Wait()
	return err
}

func (b *Broker) tickLoop(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	flush := time.NewTicker(time.Second)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := b.apply(ctx, market.Command{Kind: market.KindTick}); err != nil {
				b.log.Error("engine tick", "err", err)
			}
		case <-flush.C:
			b.mu.Lock()
			if err := b.flushLocked(ctx); err != nil {
				b.log.Error("market log flush", "err", err)
			}
			b.mu.Unlock()
			b.flushBeats(ctx)
			b.flushUptime(ctx)
		}
	}
}

// nowMs is the engine's clock: wall time, but never behind the last
// command (a clock step back must not make the engine refuse commands).
func (b *Broker) nowMs() int64 {
	n := b.now().UnixMilli()
	if e := b.w.engine.Now(); n < e {
		return e
	}
	return n
}

// BeginShutdown ends long-lived requests (agents' polls, live pages):
// the process is going away and they would only hold its shutdown.
func (b *Broker) BeginShutdown() { b.stopOnce.Do(func() { close(b.stopping) }) }

// Stopping is closed once BeginShutdown was called.
func (b *Broker) Stopping() <-chan struct{} { return b.stopping }
