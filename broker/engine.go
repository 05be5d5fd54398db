package broker

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/poc"
)

// The engine writer: every command goes through applyLocked, which logs
// it before the engine sees it (so a restart replays the same history),
// turns the engine's events into order and lease work, and wakes whoever
// follows the market. (The snapshots here are the market figures the
// charts plot; the command log itself is replayed whole at start.)

// writer is the engine with its command log: the log's last sequence
// number, the entries not yet written, and the commands events called for
// that wait for the current one to finish. It has no lock of its own: the
// Broker's mu guards it, as it guards everything the events change.
type writer struct {
	engine   *market.Engine
	seq      int64
	unlogged []models.MarketLogEntry
	// checkpointSeq is the log entry the newest stored checkpoint follows;
	// nextCheckpoint the seq at which the next is due; checkpointing says
	// one is being written (checkpoints, which Run waits for).
	checkpointSeq, nextCheckpoint int64
	checkpointing                 bool
	checkpoints                   sync.WaitGroup
	// followUps are commands events called for, run after the command
	// that caused them; inEvents and draining say where in that the
	// writer is.
	followUps          []market.Command
	inEvents, draining bool
}

// record appends an applied command to the log's unwritten tail.
func (w *writer) record(c *market.Command) {
	w.seq++
	w.unlogged = append(w.unlogged, models.MarketLogEntry{Seq: w.seq, Command: base64.StdEncoding.EncodeToString(market.MarshalCommand(nil, c))})
}

// flush writes the log's tail.
func (w *writer) flush(ctx context.Context, store engineStore) error {
	if len(w.unlogged) == 0 {
		return nil
	}
	if err := store.AppendMarketLog(ctx, w.unlogged); err != nil {
		return fmt.Errorf("persist market log: %w", err)
	}
	w.unlogged = w.unlogged[:0]
	return nil
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
	evs, err := b.applyOneLocked(ctx, c)
	b.drainLocked(ctx)
	return evs, err
}

// followLocked queues a command an event calls for (releasing a failed
// match): it runs after the command being applied, never inside it, and
// at once when no command is being applied.
func (b *Broker) followLocked(ctx context.Context, c market.Command) {
	b.w.followUps = append(b.w.followUps, c)
	if !b.w.inEvents {
		b.drainLocked(ctx)
	}
}

// drainLocked applies the queued follow-ups in order; those their own
// events queue run after them, in the same loop.
func (b *Broker) drainLocked(ctx context.Context) {
	if b.w.draining {
		return
	}
	b.w.draining = true
	defer func() { b.w.draining = false }()
	for len(b.w.followUps) > 0 {
		next := b.w.followUps[0]
		b.w.followUps = b.w.followUps[1:]
		if _, err := b.applyOneLocked(ctx, next); err != nil {
			// Expected when the engine already let go (a reservation that
			// lapsed): the release had nothing left to do.
			b.log.Debug("follow-up command", "kind", next.Kind, "order", next.Order, "err", err)
		}
	}
}

func (b *Broker) applyOneLocked(ctx context.Context, c market.Command) ([]market.Event, error) {
	if b.cfg.Follower {
		return nil, ErrFollower
	}
	c.Now = b.nowMs()
	evs, err := b.w.engine.Apply(&c)
	if err != nil {
		return nil, err
	}
	if c.Kind == market.KindTick && len(evs) == 0 {
		// An idle tick changes nothing but the clock, and the next logged
		// command carries a later time anyway: not logging it keeps the
		// log from growing twice a second while the market is idle.
		return nil, nil
	}
	b.w.record(&c)
	evs = slices.Clone(evs)
	if c.Kind != market.KindHeartbeat && c.Kind != market.KindTick {
		if err := b.flushLocked(ctx); err != nil {
			return nil, err
		}
	}
	outer := b.w.inEvents
	b.w.inEvents = true
	for _, ev := range evs {
		b.onEventLocked(ctx, ev)
	}
	b.w.inEvents = outer
	if len(evs) > 0 || c.Kind == market.KindUpsertMachine || c.Kind == market.KindRemoveMachine {
		b.notifyLocked()
	}
	return evs, nil
}

func (b *Broker) flushLocked(ctx context.Context) error {
	if err := b.w.flush(ctx, b.store); err != nil {
		return err
	}
	b.checkpointLocked(ctx)
	return nil
}

// checkpointLocked starts a checkpoint once CheckpointEvery commands are
// logged past the last one. The state is encoded here, under the lock, so
// it is exactly the state after entry seq (every entry up to it is
// flushed); the write, and the log compaction with it, go on behind.
func (b *Broker) checkpointLocked(ctx context.Context) {
	w := &b.w
	if w.checkpointing || w.seq < w.nextCheckpoint {
		return
	}
	seq, start := w.seq, time.Now()
	raw := w.engine.Snapshot(nil)
	encoded := time.Since(start)
	state := base64.StdEncoding.EncodeToString(raw)
	w.checkpointing = true
	w.checkpoints.Add(1)
	go func() {
		defer w.checkpoints.Done()
		err := b.store.SaveMarketCheckpoint(context.WithoutCancel(ctx), seq, state, b.now())
		b.mu.Lock()
		w.checkpointing = false
		if err == nil {
			w.checkpointSeq, w.nextCheckpoint = seq, seq+int64(b.cfg.CheckpointEvery)
		} else {
			// Try again a quarter interval on, not at every flush.
			w.nextCheckpoint = w.seq + int64(max(b.cfg.CheckpointEvery/4, 1))
		}
		b.mu.Unlock()
		if err != nil {
			b.log.Warn("market checkpoint", "seq", seq, "err", err)
			return
		}
		b.log.Info("market checkpoint", "seq", seq, "bytes", len(raw), "encode", encoded.Round(time.Microsecond), "total", time.Since(start).Round(time.Millisecond))
	}()
}

// rebuilt is an engine restored from the log: the entry it is at, and
// the checkpoint it started from.
type rebuilt struct {
	engine          *market.Engine
	seq, checkpoint int64
	replayed        int
}

// rebuild restores the engine from the newest checkpoint that restores
// (the older one kept is the fallback) and replays the log after it. It
// touches nothing of b's but its configuration and store, so a follower
// rebuilds without holding its lock.
func (b *Broker) rebuild(ctx context.Context) (rebuilt, error) {
	cps, err := b.store.MarketCheckpoints(ctx)
	if err != nil {
		return rebuilt{}, fmt.Errorf("market checkpoints: %w", err)
	}
	cfg := b.engineConfig()
	var r rebuilt
	for _, cp := range cps {
		raw, err := base64.StdEncoding.DecodeString(cp.State)
		if err == nil {
			r.engine, err = market.Restore(cfg, raw)
		}
		if err == nil {
			r.checkpoint = cp.Seq
			break
		}
		b.log.Error("market checkpoint does not restore; trying an older one", "seq", cp.Seq, "err", err)
	}
	if r.engine == nil {
		if r.engine, err = market.NewEngine(cfg); err != nil {
			return rebuilt{}, fmt.Errorf("engine: %w", err)
		}
	}
	first, err := b.store.FirstMarketLogSeq(ctx)
	if err != nil {
		return rebuilt{}, fmt.Errorf("market log: %w", err)
	}
	if first > r.checkpoint+1 {
		// The entries between were compacted behind a checkpoint that did
		// not restore: replaying the rest onto an older state could rent
		// GPUs held by live leases twice.
		return rebuilt{}, fmt.Errorf("the market log resumes at entry %d, but the engine could only be restored to entry %d: refusing to rebuild from a gap", first, r.checkpoint)
	}
	r.seq = r.checkpoint
	var cmds []market.Command
	err = b.store.MarketLog(ctx, r.seq, func(page []models.MarketLogEntry) error {
		cmds = cmds[:0]
		for _, en := range page {
			c, err := decodeEntry(en)
			if err != nil {
				return err
			}
			cmds = append(cmds, c)
		}
		var failed error
		r.engine.ApplyBatch(cmds, func(i int, _ []market.Event, err error) bool {
			if err != nil {
				// The log holds only commands that applied; one that no
				// longer does means the catalog (regions, models) changed
				// under it. Refuse to guess: GPUs held by live leases
				// could be rented twice.
				failed = fmt.Errorf("market log entry %d (%s) no longer applies: %w; was the region or model catalog changed?", page[i].Seq, cmds[i].Kind, err)
				return false
			}
			r.seq = page[i].Seq
			r.replayed++
			return true
		})
		return failed
	})
	if err != nil {
		return rebuilt{}, fmt.Errorf("replay: %w", err)
	}
	return r, nil
}

// decodeEntry reads one logged command.
func decodeEntry(en models.MarketLogEntry) (market.Command, error) {
	raw, err := base64.StdEncoding.DecodeString(en.Command)
	if err != nil {
		return market.Command{}, fmt.Errorf("market log entry %d: %w", en.Seq, err)
	}
	c, err := market.UnmarshalCommand(raw)
	if err != nil {
		return market.Command{}, fmt.Errorf("market log entry %d: %w", en.Seq, err)
	}
	return c, nil
}

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
		case market.EvReservationExpired, market.EvLeaseReleased, market.EvOrderCancelled, market.EvPreempted:
			m.held &^= ev.GPUs
		case market.EvMachineOffline:
			m.online = false
			if !b.cfg.Follower {
				// Named by its last heartbeat: a replay of the same
				// outage alerts once.
				go b.alert(ctx, m.providerID, AlertMachineOffline, m.id+":"+strconv.FormatInt(m.lastBeat.Unix(), 10),
					"Machine "+m.hostname+" ("+m.id+") stopped sending heartbeats at "+m.lastBeat.UTC().Format(noteTime)+
						" and is unlisted until it is back. Its leases' epochs are missed while it is down.", "/provider")
			}
		case market.EvMachineOnline:
			m.online = true
		}
		b.indexLocked(m)
	}
	switch ev.Kind {
	case market.EvMatched:
		b.startQuoteLocked(ctx, ev)
	case market.EvPreempted:
		b.preemptedLocked(ctx, ev)
	case market.EvReservationExpired:
		if f := b.flights[ev.Order]; f != nil && f.answered {
			// The lease transaction is on its way (createLease): it ends
			// the order itself, as failed with the escrow returned when
			// its confirmation finds the reservation gone, so the buyer
			// is not told nothing was charged.
			break
		}
		b.failFlightLocked(ctx, ev.Order, "The provider did not confirm in time (quote expired); nothing was charged.")
	case market.EvOrderExpired:
		if f := b.flights[ev.Order]; f != nil {
			b.moveOrderLocked(ctx, f, models.OrderExpired, "")
		}
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

func (b *Broker) snapshot(ctx context.Context) error {
	if _, err := b.CountNetwork(ctx); err != nil {
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
	return b.w.engine.Stats()
}
