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
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/models"
)

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
	if err := cfg.fill(); err != nil {
		return nil, err
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
