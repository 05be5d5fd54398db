package broker

import (
	"context"
	"errors"
	"strconv"
	"time"

	"cosmossdk.io/math"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
)

// SetAutoExtend turns a lease's auto-extend on (hours > 0: that many hours
// are added each time, while the buyer's wallet would still hold floor
// uhwy afterwards) or off (hours 0). Each extension is an ordinary one
// (ExtendLease): the provider's agent consents to each, at the lease's
// price, and a refusal is shown on the lease and retried later.
func (b *Broker) SetAutoExtend(ctx context.Context, userID, leaseID string, hours int64, floor highway.Amount) (*models.Lease, error) {
	l, err := b.ownLease(ctx, userID, leaseID)
	if err != nil {
		return nil, err
	}
	if hours < 0 || hours > MaxExtendHours {
		return nil, &highway.Error{Code: highway.EINVALID, Field: "hours", Message: "Extend by 1 to " + strconv.Itoa(MaxExtendHours) + " hours each time, or 0 to turn auto-extend off."}
	}
	if floor < 0 {
		return nil, &highway.Error{Code: highway.EINVALID, Field: "floor", Message: "The floor is an amount of HWY, 0 or more."}
	}
	if hours > 0 && l.Status != models.LeaseActive {
		return nil, &highway.Error{Code: highway.ECONFLICT, Message: "Only an active lease can be auto-extended (this one is " + l.Status + ")."}
	}
	if hours == 0 {
		floor = 0
	}
	if err := b.store.UpdateLease(ctx, l.ID, map[string]any{"auto_extend_hours": hours, "auto_extend_floor": int64(floor), "auto_extend_note": ""}); err != nil {
		return nil, err
	}
	b.log.Info("auto-extend set", "lease", l.ID, "hours", hours, "floor", floor)
	return b.store.LeaseByID(ctx, l.ID)
}

// AutoExtendOutlook says whether a lease with auto-extend on will extend
// when it is next due, and why not: the buyer's wallet must hold the
// extension's cost on top of the floor. It reads the wallet's balance on
// chain.
func (b *Broker) AutoExtendOutlook(ctx context.Context, l *models.Lease) (will bool, why string, err error) {
	if l.AutoExtendHours == 0 || l.Status != models.LeaseActive {
		return false, "", nil
	}
	if b.cfg.Chain == nil {
		return false, "This marketplace is not connected to a chain.", nil
	}
	bal, err := b.walletBalance(ctx, l.BuyerID)
	if err != nil {
		return false, "", err
	}
	cost, ok := b.extensionCost(l, l.AutoExtendHours)
	if !ok {
		return false, "", &highway.Error{Code: highway.EINTERNAL, Message: "The lease's price cannot be read."}
	}
	if need := cost.Add(math.NewInt(l.AutoExtendFloor)); bal.LT(need) {
		return false, "the wallet holds " + highway.FormatHWY(bal.String()) + " HWY; the next " + strconv.FormatInt(l.AutoExtendHours, 10) +
			" h cost " + highway.FormatHWY(cost.String()) + " HWY on top of the floor of " + highway.Amount(l.AutoExtendFloor).HWY() + " HWY.", nil
	}
	return true, "", nil
}

// AutoExtendAt is when the leader extends a lease with auto-extend on.
func (b *Broker) AutoExtendAt(l *models.Lease) time.Time {
	return l.EndsAt.Add(-b.cfg.AutoExtendBefore)
}

// extensionCost is what extending l by hours escrows: the lease's price
// per epoch times the epochs the hours round up to, as ExtendLease counts.
func (b *Broker) extensionCost(l *models.Lease, hours int64) (math.Int, bool) {
	price, ok := math.NewIntFromString(l.PricePerEpoch)
	if !ok {
		return math.Int{}, false
	}
	return price.MulRaw(b.epochsFor(hours)), true
}

// autoDue is what an automatic extension of hours checks under the
// lease's claim: auto-extend still adds those hours and the lease still
// ends before the given time (neither extended by hand nor changed since
// the pass read it).
func autoDue(hours int64, before time.Time) func(*models.Lease) bool {
	return func(cur *models.Lease) bool {
		return cur.AutoExtendHours == hours && cur.EndsAt.Before(before)
	}
}

// noteTime is how a note shows a time, as the pages do.
const noteTime = "2006-01-02 15:04 UTC"

// autoExtendRetry is how long the leader waits before trying again to
// extend a lease whose last extension failed (the agent declined or did
// not answer, the chain refused): the provider is not asked every tick.
const autoExtendRetry = time.Minute

// autoExtendLoop extends the leases with auto-extend on as they come due.
func (b *Broker) autoExtendLoop(ctx context.Context) {
	t := time.NewTicker(b.cfg.AutoExtendEvery)
	defer t.Stop()
	failedAt := map[string]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.autoExtendDue(ctx, failedAt)
		}
	}
}

// autoExtendDue extends each lease that is due, one after another (each
// waits for its agent's signature and one block).
func (b *Broker) autoExtendDue(ctx context.Context, failedAt map[string]time.Time) {
	now := b.now()
	due, err := b.store.AutoExtendDue(ctx, now.Add(b.cfg.AutoExtendBefore), 100)
	if err != nil {
		b.log.Error("list leases to auto-extend", "err", err)
		return
	}
	for i := range due {
		l := &due[i]
		if at, ok := failedAt[l.ID]; ok && now.Sub(at) < autoExtendRetry {
			continue
		}
		note := ""
		will, why, err := b.AutoExtendOutlook(ctx, l)
		switch {
		case err != nil:
			b.log.Warn("auto-extend outlook", "lease", l.ID, "err", err)
			continue
		case !will:
			// Rechecked every tick (one balance query): the buyer may
			// top the wallet up or lower the floor at any moment.
			note = "Not extended: " + why
		default:
			got, err := b.extendLease(ctx, l.BuyerID, l.ID, l.AutoExtendHours, autoDue(l.AutoExtendHours, now.Add(b.cfg.AutoExtendBefore)))
			if errors.Is(err, errNotDue) {
				continue // extended by hand or changed meanwhile: the next pass sees it as it is
			}
			if err != nil {
				note = "Not extended: " + highway.ErrorMessage(err)
				failedAt[l.ID] = now
				b.log.Info("auto-extend failed", "lease", l.ID, "err", err)
			} else {
				note = "Extended by " + strconv.FormatInt(l.AutoExtendHours, 10) + " h at " + now.UTC().Format(noteTime) +
					"; it now ends " + got.EndsAt.UTC().Format(noteTime) + "."
				delete(failedAt, l.ID)
			}
		}
		if note == l.AutoExtendNote {
			continue
		}
		if err := b.store.UpdateLease(ctx, l.ID, map[string]any{"auto_extend_note": note}); err != nil {
			b.log.Error("record auto-extend", "lease", l.ID, "err", err)
		}
	}
	for id, at := range failedAt {
		if now.Sub(at) > time.Hour {
			delete(failedAt, id)
		}
	}
}
