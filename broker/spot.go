package broker

import (
	"context"
	"errors"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
)

// Interruptible capacity, the marketplace's side (the engine's rules are
// market/spot.go and docs/matching.md): providers' floors and notices,
// and what a preemption sets off — the agent's notice, the buyer's alert,
// and the lease's close on chain when the notice ends.

// InterruptibleTerms are a provider's interruptible terms for one model.
type InterruptibleTerms struct {
	Floor    int64 // per GPU-hour, micro-units; 0: no interruptible use
	NoticeMs int64
}

// SetPriceTerms sets a provider's ask for a model together with its
// interruptible floor and preemption notice, checking all of them before
// it changes anything, and relists its machines. A floor of 0 turns
// interruptible use off (running interruptible leases run on); a notice
// of 0 is the default 30 s.
func (b *Broker) SetPriceTerms(ctx context.Context, providerID, model string, price, floor highway.Amount, noticeS int64) error {
	if err := checkPrice(b.cfg.Models, model, price); err != nil {
		return err
	}
	noticeS, err := checkSpot(price, floor, noticeS)
	if err != nil {
		return err
	}
	if err := b.store.SetPrice(ctx, models.Price{ProviderID: providerID, Model: model, PricePerGPUHour: int64(price)}); err != nil {
		return err
	}
	if _, err := b.store.SetSpotTerms(ctx, providerID, model, int64(floor), noticeS); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.setPriceLocked(providerID, model, int64(price))
	b.setSpotLocked(providerID, model, InterruptibleTerms{Floor: int64(floor), NoticeMs: noticeS * 1000})
	b.relistProviderLocked(ctx, providerID)
	return nil
}

// checkSpot checks an interruptible floor against the ask and returns the
// notice to store.
func checkSpot(ask, floor highway.Amount, noticeS int64) (int64, error) {
	switch {
	case floor < 0:
		return 0, &highway.Error{Code: highway.EINVALID, Field: "spot_floor_per_gpu_hour", Message: "The interruptible floor is an amount: 0 (off) or more."}
	case floor == 0:
		return 0, nil
	case floor > ask:
		return 0, &highway.Error{Code: highway.EINVALID, Field: "spot_floor_per_gpu_hour",
			Message: "The interruptible floor must be at most your on-demand price (" + ask.HWY() + " HWY)."}
	case noticeS == 0:
		return market.DefaultNoticeMs / 1000, nil
	case noticeS*1000 < market.MinNoticeMs || noticeS*1000 > market.MaxNoticeMs:
		return 0, &highway.Error{Code: highway.EINVALID, Field: "notice_s", Message: "The preemption notice must be 10 to 300 seconds."}
	}
	return noticeS, nil
}

// SpotTerms returns a provider's interruptible terms by model (models
// with a floor only).
func (b *Broker) SpotTerms(providerID string) map[string]InterruptibleTerms {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := map[string]InterruptibleTerms{}
	for k, v := range b.spot[providerID] {
		if v.Floor > 0 {
			out[k] = v
		}
	}
	return out
}

func (b *Broker) setSpotLocked(providerID, model string, t InterruptibleTerms) {
	if b.spot[providerID] == nil {
		b.spot[providerID] = map[string]InterruptibleTerms{}
	}
	b.spot[providerID][model] = t
}

// spotListing is the floor and notice a machine is listed with: a floor
// above a since-lowered ask is held at the ask (interruptible never costs
// more than on demand).
func (b *Broker) spotListing(providerID, model string, ask int64) (floor, noticeMs int64) {
	t := b.spot[providerID][model]
	if t.Floor <= 0 {
		return 0, 0
	}
	return min(t.Floor, ask), t.NoticeMs
}

// preemptedLocked starts what a preemption calls for, off the lock: the
// engine has already given the lease's GPUs to ev.By.
func (b *Broker) preemptedLocked(ctx context.Context, ev market.Event) {
	if b.cfg.Follower {
		return
	}
	go b.preempt(context.WithoutCancel(ctx), ev)
}

// preempt records the preemption, gives the agent its notice and tells
// the buyer. Recording first makes it happen once, however often the
// event is seen; the close at the notice's end is preemptLoop's.
func (b *Broker) preempt(ctx context.Context, ev market.Event) {
	// Recovery leaves a preemption being recorded here alone: its own
	// (default) notice would be the wrong one.
	b.preempting.Store(ev.Order, true)
	defer b.preempting.Delete(ev.Order)
	at := time.UnixMilli(ev.At)
	// The lease may be preempted in the very command that confirmed it
	// (its GPUs became available to a resting on-demand order), before
	// createLease, holding the broker's lock, has written its row: wait
	// for the row, as long as a lease's creation may take. A row that
	// never comes means the lease was not recorded (and was closed).
	var l *models.Lease
	for waited := time.Duration(0); ; waited += 50 * time.Millisecond {
		cur, first, err := b.store.PreemptLease(ctx, ev.Order, ev.By, at)
		switch {
		case err == nil && first:
			l = cur
		case err == nil && cur.PreemptAt != nil:
			return // recorded already (a repeated event, or recovery)
		case err != nil && highway.ErrorCode(err) != highway.ENOTFOUND:
			b.log.Error("record preemption; the next recovery pass retries", "order", ev.Order, "err", err)
			return
		}
		if l != nil {
			break
		}
		if waited > leaseTxTimeout+5*time.Second || ctx.Err() != nil {
			b.log.Warn("preempted lease never recorded", "order", ev.Order)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := b.mail.post(ctx, l.AgentID, protocol.Assignment{LeaseID: l.ID, Action: protocol.ActionPreempt, PreemptAt: ev.At}); err != nil {
		b.log.Error("queue preemption notice", "lease", l.ID, "err", err)
	}
	b.endShellsOf(l.ID)
	b.closeForwardsOf(ctx, l.ID, "the lease was preempted")
	b.log.Info("lease preempted", "lease", l.ID, "by", ev.By, "stop_at", at)
	b.alert(ctx, l.BuyerID, AlertPreempted, l.ID, "Your interruptible lease "+l.ID+" was preempted by an on-demand order or a higher bid. "+
		"Its workload got SIGTERM and stops at "+at.UTC().Format("15:04:05 UTC")+"; the lease closes then and the epoch cut short is refunded.",
		"/leases/"+l.ID)
	b.mu.Lock()
	b.notifyLocked()
	b.mu.Unlock()
}

// recoverPreemptions finds the preemptions a previous leader applied but
// did not record (it stopped between the engine's command and the
// database): an active interruptible lease the rebuilt engine no longer
// holds lost its GPUs. Its original notice is in the lost event; it gets
// the default notice from now, and the usual notice, alert and close.
func (b *Broker) recoverPreemptions(ctx context.Context) {
	ls, err := b.store.UnpreemptedInterruptible(ctx)
	if err != nil {
		b.log.Error("list interruptible leases", "err", err)
		return
	}
	for i := range ls {
		if _, busy := b.preempting.Load(ls[i].OrderID); busy {
			continue
		}
		b.mu.RLock()
		held := b.w.engine.HoldsLease(ls[i].OrderID)
		b.mu.RUnlock()
		if !held {
			b.log.Warn("interruptible lease lost its GPUs without a record; preempting it now", "lease", ls[i].ID)
			b.preempt(ctx, market.Event{Kind: market.EvPreempted, Order: ls[i].OrderID, At: b.now().Add(market.DefaultNoticeMs * time.Millisecond).UnixMilli()})
		}
	}
}

// preemptEvery is how often the leader closes preempted leases whose
// notice ended: the close lands at most this long after the notice.
const preemptEvery = time.Second

// preemptRecoverEvery is how often the leader looks for preemptions the
// engine applied but the database does not show (recoverPreemptions).
const preemptRecoverEvery = 10 * time.Second

// preemptLoop closes preempted leases as their notice ends, and now and
// then records preemptions that were applied but not recorded. It reads
// the database, so a leader that took over closes what its predecessor
// could not. A close that fails is retried a minute later, so a few
// stuck leases do not hold up the rest.
func (b *Broker) preemptLoop(ctx context.Context) {
	t := time.NewTicker(preemptEvery)
	defer t.Stop()
	failedAt := map[string]time.Time{}
	lastRecover := b.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := b.now()
		if now.Sub(lastRecover) >= preemptRecoverEvery {
			b.recoverPreemptions(ctx)
			lastRecover = now
		}
		due, err := b.store.PreemptedDue(ctx, now, 500)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Error("list preempted leases", "err", err)
			}
			continue
		}
		for i := range due {
			if at, ok := failedAt[due[i].ID]; ok && now.Sub(at) < time.Minute {
				continue
			}
			if err := b.closePreempted(ctx, &due[i]); err != nil && ctx.Err() == nil {
				failedAt[due[i].ID] = now
				b.log.Warn("close preempted lease", "lease", due[i].ID, "err", err)
			} else {
				delete(failedAt, due[i].ID)
			}
		}
	}
}

// closePreempted closes a preempted lease on chain with the buyer's
// wallet: the chain refunds every unsettled epoch, the one cut short
// included, so the buyer pays only for epochs served and proven.
func (b *Broker) closePreempted(ctx context.Context, l *models.Lease) error {
	if _, err := b.CloseLease(ctx, l.BuyerID, l.ID); err != nil {
		// Perhaps closed on chain already (a close whose recording
		// failed): the chain's record ends the row's turn here.
		if rerr := b.refreshLease(ctx, l.ChainLeaseID); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	return b.store.UpdateLease(ctx, l.ID, map[string]any{"auto_extend_hours": 0, "auto_extend_note": "Preempted at " +
		l.PreemptAt.UTC().Format(noteTime) + " by order " + l.PreemptedBy + "; closed on chain, the epoch cut short refunded."})
}

// quoteAfterNotice is how long after a preemption's notice the
// preempting order's quote is asked for: the agent kills the preempted
// workload when the notice ends and counts its GPUs free once it has
// exited (a container's stop takes a moment), and a quote asked sooner
// would be refused. Within the reservation, which lasts its TTL after
// the notice.
const quoteAfterNotice = 3 * time.Second

// quoteAt is when a match's quote may be asked for: at once, or once the
// interruptible leases it preempted have had their notice and stopped.
func quoteAt(ev market.Event, now time.Time) time.Duration {
	if ev.At == 0 {
		return 0
	}
	return max(time.UnixMilli(ev.At).Sub(now)+quoteAfterNotice, 0)
}
