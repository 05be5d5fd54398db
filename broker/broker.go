// Package broker is the order-to-lease service. It runs the matching
// engine's single writer (market.Engine behind one mutex, its input log
// persisted through models and replayed at start), feeds it the live
// capacity agents report, turns matches into on-chain leases (a quote
// signed by the provider's agent, MsgCreateLease signed with the buyer's
// managed wallet), hands work to agents, and follows the chain's escrow
// events to keep the marketplace's tables in step with the money.
//
// One broker runs per marketplace: the engine is single-writer by design
// (see docs/deploy.md); the other replicas serve pages and the API from the
// database.
package broker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/chain/client"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/provider-agent/protocol"
)

// Chain is what the broker needs from the chain; *client.Client implements it.
type Chain interface {
	ChainID() string
	Send(ctx context.Context, s client.Signer, msgs ...sdk.Msg) (*client.TxResult, error)
	Lease(ctx context.Context, id uint64) (escrowtypes.Lease, error)
	Balance(ctx context.Context, addr sdk.AccAddress, denom string) (math.Int, error)
	Follow(ctx context.Context, from int64, opts client.FollowOptions, fn func(client.Block) error) error
	LatestHeight(ctx context.Context) (int64, time.Time, error)
}

// Config configures a Broker.
type Config struct {
	Store  *models.Store
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
	// EpochDuration is the chain's epoch (epoch blocks × block time); it
	// converts prices per GPU-hour to prices per epoch.
	EpochDuration time.Duration
	// QuoteTTL is how long a quote stays valid (≤ the chain's max_quote_ttl).
	QuoteTTL time.Duration
	// Denom is the chain denom leases are paid in.
	Denom string
	// WalletKey seals the managed wallets' keys (32 bytes).
	WalletKey []byte
	// Faucet, when set, funds buyers in dev mode (FaucetAmount each time).
	Faucet       client.Signer
	FaucetAmount math.Int
	// Arbiter signs MsgResolveDispute; nil: disputes cannot be resolved here.
	Arbiter client.Signer
	// VerifyParams and VerifyWork shape the verification PoC a machine
	// must clear before it is listed (the chain's PoC params in practice).
	VerifyParams poc.Params
	VerifyWork   time.Duration
	// SnapshotEvery is how often the market is recorded for the charts
	// (default one minute).
	SnapshotEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Broker is the marketplace's single writer. Create it with New, start its
// loops with Run.
type Broker struct {
	cfg   Config
	store *models.Store
	log   *slog.Logger
	now   func() time.Time

	// mu guards everything below; browsing takes it for reading only, so
	// page and API reads run in parallel between writes.
	mu       sync.RWMutex
	engine   *market.Engine
	seq      int64
	unlogged []models.MarketLogEntry
	// stats are the network figures of the last snapshot (statsMu).
	statsMu  sync.Mutex
	stats    *NetworkStats
	machines map[string]*machineState
	byModel  map[string]*modelIndex      // listed model → its browse rows
	prices   map[string]map[string]int64 // provider → model → ask
	flights  map[string]*flight          // order id → match in progress
	quotes   map[string][]protocol.QuoteRequest
	verifies map[uint64]*challenge
	nextAsg  int64
	wake     map[string]chan struct{} // agent id → poll wake-up
	changed  chan struct{}            // closed and replaced on every market change
	// uptimeDirty are the machines with online time credited since the
	// last flush; uptimePruned is the day old uptime rows were last pruned.
	uptimeDirty  map[string]struct{}
	uptimePruned int32
	// generation counts the changes, so a page rendered at one generation
	// can tell whether it missed any before its event stream opened.
	generation atomic.Uint64
	stopping   chan struct{} // closed by BeginShutdown
	stopOnce   sync.Once

	// beats are the latest heartbeat per machine, waiting to be stored.
	beatMu sync.Mutex
	beats  map[string]queuedBeat
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
	if cfg.OfflineMisses < 2 {
		cfg.OfflineMisses = 3
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
		machines: map[string]*machineState{}, byModel: map[string]*modelIndex{}, prices: map[string]map[string]int64{},
		flights: map[string]*flight{}, quotes: map[string][]protocol.QuoteRequest{},
		verifies: map[uint64]*challenge{}, wake: map[string]chan struct{}{}, uptimeDirty: map[string]struct{}{}, changed: make(chan struct{}),
		stopping: make(chan struct{}), beats: map[string]queuedBeat{}, reported: map[string]string{},
	}
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

// load replays the engine's log and reads machines, prices and in-flight
// orders.
func (b *Broker) load(ctx context.Context) error {
	e, err := market.NewEngine(b.engineConfig())
	if err != nil {
		return fmt.Errorf("broker: engine: %w", err)
	}
	n := 0
	suspended := map[string]bool{}
	err = b.store.MarketLog(ctx, func(page []models.MarketLogEntry) error {
		for _, en := range page {
			raw, err := base64.StdEncoding.DecodeString(en.Command)
			if err != nil {
				return fmt.Errorf("market log entry %d: %w", en.Seq, err)
			}
			c, err := market.UnmarshalCommand(raw)
			if err != nil {
				return fmt.Errorf("market log entry %d: %w", en.Seq, err)
			}
			if _, err := e.Apply(&c); err != nil {
				// The log holds only commands that applied; one that no
				// longer does means the catalog (regions, models) changed
				// under it. Refuse to guess: GPUs held by live leases
				// could be rented twice.
				return fmt.Errorf("market log entry %d (%s) no longer applies: %w; was the region or model catalog changed?", en.Seq, c.Kind, err)
			}
			b.seq = en.Seq
			n++
			switch c.Kind {
			case market.KindSuspendProvider:
				suspended[c.Provider] = true
			case market.KindReinstateProvider:
				delete(suspended, c.Provider)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("broker: replay: %w", err)
	}
	b.engine = e
	prices, err := b.store.Prices(ctx)
	if err != nil {
		return err
	}
	for _, p := range prices {
		b.setPriceLocked(p.ProviderID, p.Model, p.PricePerGPUHour)
	}
	ms, err := b.store.AllMachines(ctx)
	if err != nil {
		return err
	}
	for i := range ms {
		st := b.machineFromRow(&ms[i])
		if a, err := b.store.AgentOfMachine(ctx, ms[i].ID); err == nil {
			st.agentID = a.ID
		}
		st.suspended = st.suspended || suspended[st.providerID]
		b.indexLocked(st)
	}
	if err := b.loadUptimeLocked(ctx); err != nil {
		return err
	}
	counts, err := b.store.EpochCounts(ctx, b.now().Add(-reliabilityWindow), "")
	if err != nil {
		return err
	}
	b.setEpochCountsLocked(counts)
	if b.nextAsg, err = b.store.MaxAssignmentID(ctx); err != nil {
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
	b.log.Info("market engine rebuilt", "commands", n, "machines", len(ms), "stats", fmt.Sprintf("%+v", e.Stats()))
	return nil
}

// Run runs the broker's loops (engine clock, log flush, chain indexer)
// until ctx ends.
func (b *Broker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.tickLoop(ctx)
	}()
	if b.cfg.Chain != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.indexLoop(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.snapshotLoop(ctx)
	}()
	<-ctx.Done()
	wg.Wait()
	b.flushBeats(context.WithoutCancel(ctx))
	b.flushUptime(context.WithoutCancel(ctx))
	b.mu.Lock()
	err := b.flushLocked(context.WithoutCancel(ctx))
	b.mu.Unlock()
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
	if e := b.engine.Now(); n < e {
		return e
	}
	return n
}

// apply runs one command through the engine and logs it. Heartbeats and
// ticks are flushed to the database in batches (a lost one only delays
// an offline mark); every other command is flushed before apply returns,
// so an order, cancel or lease confirmation the caller acts on is durable.
func (b *Broker) apply(ctx context.Context, c market.Command) ([]market.Event, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.applyLocked(ctx, c)
}

func (b *Broker) applyLocked(ctx context.Context, c market.Command) ([]market.Event, error) {
	c.Now = b.nowMs()
	evs, err := b.engine.Apply(&c)
	if err != nil {
		return nil, err
	}
	if c.Kind == market.KindTick && len(evs) == 0 {
		// An idle tick changes nothing but the clock, and the next logged
		// command carries a later time anyway: not logging it keeps the
		// log from growing twice a second while the market is idle.
		return nil, nil
	}
	b.seq++
	b.unlogged = append(b.unlogged, models.MarketLogEntry{Seq: b.seq, Command: base64.StdEncoding.EncodeToString(market.MarshalCommand(nil, &c))})
	evs = slices.Clone(evs)
	if c.Kind != market.KindHeartbeat && c.Kind != market.KindTick {
		if err := b.flushLocked(ctx); err != nil {
			return nil, err
		}
	}
	for _, ev := range evs {
		b.onEventLocked(ctx, ev)
	}
	if len(evs) > 0 || c.Kind == market.KindUpsertMachine || c.Kind == market.KindRemoveMachine {
		b.notifyLocked()
	}
	return evs, nil
}

func (b *Broker) flushLocked(ctx context.Context) error {
	if len(b.unlogged) == 0 {
		return nil
	}
	if err := b.store.AppendMarketLog(ctx, b.unlogged); err != nil {
		return fmt.Errorf("persist market log: %w", err)
	}
	b.unlogged = b.unlogged[:0]
	return nil
}

// BeginShutdown ends long-lived requests (agents' polls, live pages):
// the process is going away and they would only hold its shutdown.
func (b *Broker) BeginShutdown() { b.stopOnce.Do(func() { close(b.stopping) }) }

// Stopping is closed once BeginShutdown was called.
func (b *Broker) Stopping() <-chan struct{} { return b.stopping }

// Changed returns a channel closed at the next market change (offers,
// orders, leases), and the generation it follows: server-sent events wait
// on the channel.
func (b *Broker) Changed() (<-chan struct{}, uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed, b.generation.Load()
}

// Generation counts the market's changes. A live page records it before
// it reads what it shows; its event stream compares, so a change that
// lands between the render and the stream's start is not missed.
func (b *Broker) Generation() uint64 { return b.generation.Load() }

func (b *Broker) notifyLocked() {
	b.generation.Add(1)
	close(b.changed)
	b.changed = make(chan struct{})
}

// onEventLocked keeps the broker's view in step with the engine and starts
// the work an event calls for.
func (b *Broker) onEventLocked(ctx context.Context, ev market.Event) {
	if m := b.machines[ev.Machine]; m != nil {
		switch ev.Kind {
		case market.EvMatched:
			m.held |= ev.GPUs
		case market.EvReservationExpired, market.EvLeaseReleased, market.EvOrderCancelled:
			m.held &^= ev.GPUs
		case market.EvMachineOffline:
			m.online = false
		case market.EvMachineOnline:
			m.online = true
		}
		b.indexLocked(m)
	}
	switch ev.Kind {
	case market.EvMatched:
		b.startQuoteLocked(ctx, ev)
	case market.EvReservationExpired:
		b.failFlightLocked(ctx, ev.Order, "The provider did not confirm in time (quote expired); nothing was charged.")
	case market.EvOrderExpired:
		b.finishOrderAsync(ev.Order, models.OrderExpired, "")
	case market.EvOrderCancelled:
		if f := b.flights[ev.Order]; f != nil {
			delete(b.flights, ev.Order)
		}
	}
}

// finishOrderAsync records an order's end state without holding the lock
// over the database write's latency.
func (b *Broker) finishOrderAsync(id, status, failure string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		o, err := b.store.OrderByID(ctx, id)
		if err != nil {
			b.log.Error("order update", "order", id, "err", err)
			return
		}
		o.Status, o.Failure = status, failure
		if err := b.store.UpdateOrder(ctx, o); err != nil {
			b.log.Error("order update", "order", id, "err", err)
		}
		b.mu.Lock()
		b.notifyLocked()
		b.mu.Unlock()
	}()
}

func randomUint64() uint64 {
	var x [8]byte
	_, _ = rand.Read(x[:])
	return uint64(x[0])<<56 | uint64(x[1])<<48 | uint64(x[2])<<40 | uint64(x[3])<<32 | uint64(x[4])<<24 | uint64(x[5])<<16 | uint64(x[6])<<8 | uint64(x[7])
}

// addAssignmentLocked queues work for an agent and wakes its poll.
func (b *Broker) addAssignmentLocked(ctx context.Context, agentID string, as protocol.Assignment) (uint64, error) {
	b.nextAsg++
	as.ID = uint64(b.nextAsg)
	body, err := json.Marshal(as)
	if err != nil {
		return 0, err
	}
	if err := b.store.AddAssignment(ctx, models.AssignmentRow{ID: b.nextAsg, AgentID: agentID, LeaseID: as.LeaseID, Body: string(body)}); err != nil {
		return 0, err
	}
	b.wakeLocked(agentID)
	return as.ID, nil
}

func (b *Broker) wakeLocked(agentID string) {
	if ch, ok := b.wake[agentID]; ok {
		close(ch)
		delete(b.wake, agentID)
	}
}

// Poll is the agent's long-poll: assignments after id after, and quote
// requests, waiting up to wait for some to appear.
func (b *Broker) Poll(ctx context.Context, agentID string, after uint64, wait time.Duration) (protocol.AssignmentsResponse, error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		rows, err := b.store.Assignments(ctx, agentID, int64(after))
		if err != nil {
			return protocol.AssignmentsResponse{}, err
		}
		resp := protocol.AssignmentsResponse{Assignments: []protocol.Assignment{}}
		for _, r := range rows {
			var as protocol.Assignment
			if err := json.Unmarshal([]byte(r.Body), &as); err != nil {
				return resp, fmt.Errorf("assignment %d: %w", r.ID, err)
			}
			if !b.stillDue(ctx, as) {
				// A restarted agent polls from the beginning: work that is
				// over (an answered challenge, a lease that ended) is not
				// handed out again. Its id still advances the agent's cursor.
				after = as.ID
				continue
			}
			resp.Assignments = append(resp.Assignments, as)
		}
		b.mu.Lock()
		if qs := b.quotes[agentID]; len(qs) > 0 {
			resp.QuoteRequests = qs
			delete(b.quotes, agentID)
		}
		if len(resp.Assignments) > 0 || len(resp.QuoteRequests) > 0 {
			b.mu.Unlock()
			return resp, nil
		}
		ch, ok := b.wake[agentID]
		if !ok {
			ch = make(chan struct{})
			b.wake[agentID] = ch
		}
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return resp, ctx.Err()
		case <-deadline.C:
			return resp, nil
		case <-b.stopping:
			return resp, nil
		case <-ch:
		}
	}
}

type queuedBeat struct {
	update models.HeartbeatUpdate
	leases []protocol.RunningLease
}

// QueueHeartbeat stores a machine's heartbeat behind: only the latest per
// machine is kept, and the tick loop writes them once a second, so
// heartbeats cost no database write on the request path (a machine's row
// lags by at most a second; the engine has the beat at once).
func (b *Broker) QueueHeartbeat(u models.HeartbeatUpdate, leases []protocol.RunningLease) {
	b.beatMu.Lock()
	defer b.beatMu.Unlock()
	// The machine's row takes the latest beat, but workload reports are
	// merged: an agent reports a finished lease in one accepted beat only,
	// so a later beat in the same second must not drop it.
	merged := slices.Clone(b.beats[u.MachineID].leases)
	for _, l := range leases {
		if i := slices.IndexFunc(merged, func(m protocol.RunningLease) bool { return m.LeaseID == l.LeaseID }); i >= 0 {
			merged[i] = l
		} else {
			merged = append(merged, l)
		}
	}
	b.beats[u.MachineID] = queuedBeat{update: u, leases: merged}
}

// flushBeats writes the queued heartbeats, in machine id order.
func (b *Broker) flushBeats(ctx context.Context) {
	b.beatMu.Lock()
	pending := b.beats
	b.beats = make(map[string]queuedBeat, len(pending))
	b.beatMu.Unlock()
	ids := make([]string, 0, len(pending))
	for id := range pending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		q := pending[id]
		if err := b.store.ApplyHeartbeat(ctx, q.update); err != nil {
			// A beat the database holds something newer than (seq) is
			// simply superseded; anything else is worth a warning.
			if highway.ErrorField(err) != "seq" {
				b.log.Warn("store heartbeat", "machine", id, "err", err)
			}
			continue
		}
		b.leaseReports(ctx, q.update.AgentID, q.leases)
	}
}

// snapshotLoop records the market every SnapshotEvery for the charts.
func (b *Broker) snapshotLoop(ctx context.Context) {
	t := time.NewTicker(b.cfg.SnapshotEvery)
	defer t.Stop()
	for {
		if err := b.snapshot(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("market snapshot", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// NetworkStats are the network's all-time figures: leases, epochs settled,
// escrow locked and paid.
type NetworkStats struct {
	models.NetworkTotals
	Escrowed, Paid math.Int
	// At is when they were counted.
	At time.Time
}

// NetworkStats returns the figures counted at the last snapshot. They sum
// over every lease and epoch ever recorded, so a dashboard request reads
// the count the snapshot loop keeps rather than scanning the tables
// itself; before the first snapshot they are counted now.
func (b *Broker) NetworkStats(ctx context.Context) (NetworkStats, error) {
	b.statsMu.Lock()
	st := b.stats
	b.statsMu.Unlock()
	if st != nil {
		return *st, nil
	}
	return b.countNetwork(ctx)
}

func (b *Broker) countNetwork(ctx context.Context) (NetworkStats, error) {
	st := NetworkStats{At: b.now().UTC()}
	var err error
	if st.NetworkTotals, err = b.store.Totals(ctx); err != nil {
		return st, err
	}
	if st.Escrowed, st.Paid, err = b.store.Volumes(ctx); err != nil {
		return st, err
	}
	b.statsMu.Lock()
	b.stats = &st
	b.statsMu.Unlock()
	return st, nil
}

func (b *Broker) snapshot(ctx context.Context) error {
	if _, err := b.countNetwork(ctx); err != nil {
		return err
	}
	sum := b.Summary()
	at := b.now().UTC().Truncate(time.Second)
	rows := []models.MarketSnapshot{{At: at, Model: models.SnapshotTotal, H100eMilli: int64(sum.H100EquivalentsMilli), LeasesActive: int64(sum.Leases)}}
	for _, m := range sum.Models {
		rows[0].GPUsOnline += m.GPUsOnline
		rows[0].GPUsFree += m.GPUsFree
		milli, _ := poc.H100Equivalents(m.Model, uint32(m.GPUsOnline))
		rows = append(rows, models.MarketSnapshot{At: at, Model: m.Model, GPUsOnline: m.GPUsOnline, GPUsFree: m.GPUsFree,
			MedianPrice: m.MedianPrice, H100eMilli: int64(milli)})
	}
	return b.store.AddSnapshots(ctx, rows)
}

// stillDue reports whether an assignment is still worth delivering.
func (b *Broker) stillDue(ctx context.Context, as protocol.Assignment) bool {
	switch as.Action {
	case protocol.ActionVerify:
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.verifies[as.ID] != nil
	case protocol.ActionStart:
		l, err := b.store.LeaseByID(ctx, as.LeaseID)
		return err != nil || l.Status == models.LeaseActive
	}
	return true
}

// SetPrice stores a provider's ask for a model and relists its machines.
func (b *Broker) SetPrice(ctx context.Context, providerID, model string, price int64) error {
	if !slices.Contains(b.cfg.Models, model) {
		return &highway.Error{Code: highway.EINVALID, Field: "model", Message: "Unknown GPU model " + model + "."}
	}
	if price <= 0 || price > 1_000_000_000_000 {
		return &highway.Error{Code: highway.EINVALID, Field: "price_per_gpu_hour", Message: "Price must be a positive number of micro-units, at most 10^12."}
	}
	if err := b.store.SetPrice(ctx, models.Price{ProviderID: providerID, Model: model, PricePerGPUHour: price}); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.setPriceLocked(providerID, model, price)
	for _, id := range b.sortedMachineIDsLocked() {
		if m := b.machines[id]; m.providerID == providerID {
			b.relistLocked(ctx, m)
		}
	}
	return nil
}

// Prices returns a provider's asks by model.
func (b *Broker) Prices(providerID string) map[string]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]int64{}
	for k, v := range b.prices[providerID] {
		out[k] = v
	}
	return out
}

func (b *Broker) setPriceLocked(providerID, model string, price int64) {
	if b.prices[providerID] == nil {
		b.prices[providerID] = map[string]int64{}
	}
	b.prices[providerID][model] = price
}

func (b *Broker) sortedMachineIDsLocked() []string {
	ids := make([]string, 0, len(b.machines))
	for id := range b.machines {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Catalog returns the models and regions the market lists.
func (b *Broker) Catalog() (models, regions []string) {
	return slices.Clone(b.cfg.Models), slices.Clone(b.cfg.Regions)
}

// Stats is the engine's counts.
func (b *Broker) Stats() market.Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.engine.Stats()
}
