package broker

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
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

func (b *Broker) flushLocked(ctx context.Context) error { return b.w.flush(ctx, b.store) }

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
