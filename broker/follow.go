package broker

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/models"
)

// Following. A replica that does not lead serves the market's reads
// (browse, summary, order and lease pages, live updates) from a view of
// its own: a Broker made with Config.Follower, which rebuilds the engine
// as the leader does and then tails the market log, replaying each entry
// the leader writes, so its engine is the leader's as of the last flushed
// entry. Its machines' listings are read off that engine (adoptListing),
// never recomputed, so they cannot drift from what the leader matches on.
//
// Changes the log does not carry (an order's status, a lease paid on
// chain, a dispute) are in the database, which the view's pages read
// directly; the leader publishes its change count after each one
// (publishLoop), and the follower wakes its open pages when that moves.

// ErrFollower is a write attempted on a follower's view: writes reach the
// leader's broker.
var ErrFollower = errors.New("broker: this is a follower's read-only view of the market; writes go to the leader")

// errLogGap: the log no longer holds the entries after the view's (the
// leader compacted them behind a checkpoint while the follower lagged).
var errLogGap = errors.New("the market log was compacted past this view")

// followStore: a follower's catch-up, and the leader's publishing of its
// change count (follow.go).
type followStore interface {
	Leader(ctx context.Context) (models.LeaderRecord, error)
	PublishGeneration(ctx context.Context, generation uint64) error
}

// adoptListingLocked sets m's listing from what the engine holds for it:
// a follower's view after each replayed entry, and a leader's after its
// rebuild, so a takeover lists the market at once instead of after every
// agent's next beat.
func (b *Broker) adoptListingLocked(m *machineState) {
	l, ok := b.w.engine.Listing(m.id)
	m.inEngine = ok && !l.Delisted
	m.listed = market.Command{}
	m.free, m.held, m.online = 0, 0, false
	if ok {
		m.free, m.held, m.online = l.Free, l.Held, l.Online
		m.suspended = l.Suspended || (!b.cfg.Follower && m.suspended)
	}
	if m.inEngine {
		u := l.Upsert
		m.listed, m.providerID = u, u.Provider
		m.model, m.vramGiB, m.region, m.rtts = u.Model, u.VRAMGiB, u.Region, slices.Clone(u.RTTms)
		if b.cfg.Follower {
			// The leader lists a machine verified only once its
			// verification cleared: the engine is the record here.
			m.verified = u.Verified
		}
	}
	b.indexLocked(m)
}

// FollowState is how current a follower's view is: the last log entry it
// replayed, and when it last caught up with the log (zero: never).
func (b *Broker) FollowState() (seq int64, caughtUp time.Time) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.w.seq, b.caughtUp
}

// Follow keeps a follower's view current until ctx ends: every poll it
// reads the leader's change count and replays the log entries written
// since its last. A failed pass (the database unreachable) is retried at
// the next poll; errors are logged once every 30 s.
func (b *Broker) Follow(ctx context.Context, poll time.Duration) error {
	if !b.cfg.Follower {
		return errors.New("broker: Follow is for a view made with Config.Follower")
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	var lastWarn, lastRefresh time.Time
	published := models.LeaderRecord{Term: -1}
	for {
		err := b.catchUp(ctx, &published)
		if errors.Is(err, errLogGap) {
			err = b.resync(ctx)
		}
		if err == nil && time.Since(lastRefresh) >= followRefresh {
			if err = b.refresh(ctx); err == nil {
				lastRefresh = time.Now()
			}
		}
		if err != nil && ctx.Err() == nil && time.Since(lastWarn) >= 30*time.Second {
			lastWarn = time.Now()
			b.log.Warn("market view: could not catch up with the leader; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// followRefresh is how often a follower rereads what it shows from
// outside the engine (descriptions, uptime, settled epochs): they move by
// the minute.
const followRefresh = 30 * time.Second

// catchUp replays the log entries after the view's and wakes the open
// pages when anything changed: the view, or the leader's change count.
func (b *Broker) catchUp(ctx context.Context, published *models.LeaderRecord) error {
	// The count is read before the log: when it moved, the log already
	// holds every entry the leader wrote before it moved.
	rec, err := b.store.Leader(ctx)
	if err != nil {
		return err
	}
	b.mu.RLock()
	after := b.w.seq
	b.mu.RUnlock()
	changed := false
	err = b.store.MarketLog(ctx, after, func(page []models.MarketLogEntry) error {
		if page[0].Seq != after+1 {
			return errLogGap
		}
		cmds := make([]market.Command, len(page))
		for i, en := range page {
			c, err := decodeEntry(en)
			if err != nil {
				return err
			}
			cmds[i] = c
		}
		rows := b.newMachineRows(ctx, cmds)
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, r := range rows {
			if m := b.machines[r.ID]; m == nil {
				b.addMachineLocked(r)
			} else {
				m.measured = r.MeasuredMilliH100 // adopted, and indexed, by the replay below
			}
		}
		c, err := b.replayLocked(page, cmds)
		changed = changed || c
		after = b.w.seq
		return err
	})
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.caughtUp = now
	// Pages are woken by the leader's count, once per change it counted,
	// and it always follows the entries: waking them for the entries too
	// would reload every page twice. Entries whose count does not follow
	// within a second (a leader that cannot publish) wake them anyway.
	if changed && b.unannounced.IsZero() {
		b.unannounced = now
	}
	moved := rec.Term != published.Term || rec.Generation != published.Generation
	if moved || (!b.unannounced.IsZero() && now.Sub(b.unannounced) >= time.Second) {
		*published = rec
		b.unannounced = time.Time{}
		b.notifyLocked()
	}
	return nil
}

// newMachineRows reads the rows of machines the entries list that the
// view does not know yet (registered after it loaded), and of machines an
// entry lists verified that the view holds unmeasured (the leader stores
// a verification's measured rate before it relists the machine verified,
// and the log does not carry it), before the lock is taken, so a page's
// database reads never hold up the view's readers. A machine verified
// before rates were measured is read again at each of its upserts, which
// follow listing changes, not heartbeats.
func (b *Broker) newMachineRows(ctx context.Context, cmds []market.Command) []*models.Machine {
	var ids []string
	b.mu.RLock()
	for i := range cmds {
		c := &cmds[i]
		if c.Kind != market.KindUpsertMachine || slices.Contains(ids, c.Machine) {
			continue
		}
		if m := b.machines[c.Machine]; m == nil || (c.Verified && m.measured == 0) {
			ids = append(ids, c.Machine)
		}
	}
	b.mu.RUnlock()
	var rows []*models.Machine
	for _, id := range ids {
		// A row that cannot be read now is made from the listing alone
		// (replayLocked); its descriptive fields come at the next resync.
		if r, err := b.store.MachineByID(ctx, id); err == nil {
			rows = append(rows, r)
		}
	}
	return rows
}

// replayLocked applies logged entries to the view's engine and adopts the
// listings of the machines they touched. It reports whether the market
// changed as the leader counts changes. An entry that does not apply
// means the view is not the leader's any more: the caller resyncs.
func (b *Broker) replayLocked(page []models.MarketLogEntry, cmds []market.Command) (bool, error) {
	touched := map[string]struct{}{}
	changed := false
	var gap error
	// A page in one batch: the engine starts each group's lookups together
	// (market.Engine.ApplyBatch), which is what keeps a follower's replay
	// ahead of a leader that is busy.
	b.w.engine.ApplyBatch(cmds, func(i int, evs []market.Event, err error) bool {
		if err != nil {
			gap = errors.Join(errLogGap, err)
			return false
		}
		c := &cmds[i]
		b.w.seq = page[i].Seq
		if c.Machine != "" {
			touched[c.Machine] = struct{}{}
		}
		for _, ev := range evs {
			if ev.Machine != "" {
				touched[ev.Machine] = struct{}{}
			}
		}
		switch c.Kind {
		case market.KindSuspendProvider, market.KindReinstateProvider:
			for id, m := range b.machines {
				if m.providerID == c.Provider {
					touched[id] = struct{}{}
				}
			}
			changed = true
		case market.KindUpsertMachine, market.KindRemoveMachine:
			changed = true
		}
		changed = changed || len(evs) > 0
		return true
	})
	if gap != nil {
		return changed, gap
	}
	for id := range touched {
		m := b.machines[id]
		if m == nil {
			if _, ok := b.w.engine.Listing(id); !ok {
				continue
			}
			m = &machineState{id: id}
			b.machines[id] = m
		}
		b.adoptListingLocked(m)
	}
	return changed, nil
}

// resync rebuilds the view from the newest checkpoint, as a takeover
// would, when the log it tails no longer continues from it. The rebuild
// runs beside the readers; only the swap holds the lock.
func (b *Broker) resync(ctx context.Context) error {
	r, err := b.rebuild(ctx)
	if err != nil {
		return err
	}
	rows, err := b.store.AllMachines(ctx)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.w.engine, b.w.seq, b.w.checkpointSeq = r.engine, r.seq, r.checkpoint
	b.syncMachineRowsLocked(rows) // adopts the new engine's listings too
	if len(b.machines) > len(rows) {
		// Machines the view made from a listing alone, their rows unread.
		stored := make(map[string]bool, len(rows))
		for i := range rows {
			stored[rows[i].ID] = true
		}
		for id, m := range b.machines {
			if !stored[id] {
				b.adoptListingLocked(m)
			}
		}
	}
	b.notifyLocked()
	b.log.Info("market view rebuilt from a checkpoint", "checkpoint", r.checkpoint, "seq", r.seq, "commands_replayed", r.replayed)
	return nil
}

// refresh rereads what the view shows from outside the engine, which the
// leader writes to the database as it goes: the machines' descriptions
// (host, driver and CUDA versions, GPUs), uptime and settled epochs.
func (b *Broker) refresh(ctx context.Context) error {
	rows, err := b.store.AllMachines(ctx)
	if err != nil {
		return err
	}
	today := dayOf(b.now())
	uptime, err := b.store.UptimeSince(ctx, today-uptimeDays+1)
	if err != nil {
		return err
	}
	counts, err := b.store.EpochCounts(ctx, b.now().Add(-reliabilityWindow), "")
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.syncMachineRowsLocked(rows)
	b.setUptimeLocked(uptime)
	b.setEpochCountsLocked(counts)
	return nil
}

// syncMachineRowsLocked takes the machines' descriptions from their rows
// (adding the machines the view did not know) and their listings from the
// engine.
func (b *Broker) syncMachineRowsLocked(rows []models.Machine) {
	for i := range rows {
		r := &rows[i]
		m := b.machines[r.ID]
		if m == nil {
			m = b.addMachineLocked(r)
		} else {
			fresh := machineFromRow(r)
			m.providerID, m.hostname, m.cuda, m.driver, m.simulated, m.gpus = fresh.providerID, fresh.hostname, fresh.cuda, fresh.driver, fresh.simulated, fresh.gpus
			m.firstSeen, m.verified = fresh.firstSeen, fresh.verified // the engine's word, when it lists m (adoptListing)
			m.measured = fresh.measured
			b.shapeLocked(m, nil)
		}
		b.adoptListingLocked(m)
	}
}

// publishLoop records the broker's change count in the database after
// each change (bursts coalesced), so the followers' open pages reload.
func (b *Broker) publishLoop(ctx context.Context) {
	const coalesce = 20 * time.Millisecond
	published, failed := uint64(0), false
	first := true
	for {
		ch, gen := b.Changed()
		if first || gen != published || failed {
			err := b.store.PublishGeneration(ctx, gen)
			failed = err != nil
			if failed {
				if ctx.Err() == nil {
					b.log.Warn("publish the market's change count", "err", err)
				}
			} else {
				published, first = gen, false
			}
		}
		var retry <-chan time.Time
		if failed {
			retry = time.After(time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-retry:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(coalesce):
		}
	}
}
