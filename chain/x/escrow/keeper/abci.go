package keeper

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"

	"cosmossdk.io/collections"
	"cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/chain/x/escrow/types"
)

// EndBlocker does only what is due at this height, found through the
// due-height indexes, never by scanning leases: it records this block's
// hash (for epoch seeds), refunds epochs whose proof deadline passed (and
// ends leases that missed too many in a row or ran their course), pays
// out cleared epochs whose dispute window passed, and forgets quote nonces
// whose quotes have expired anyway.
func (k Keeper) EndBlocker(ctx context.Context) error {
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	h := sdkCtx.BlockHeight()
	if err := k.BlockHashes.Set(ctx, h, blockHashOf(sdkCtx)); err != nil {
		return err
	}
	if old := h - types.BlockHashRetention; old > 0 {
		if err := k.BlockHashes.Remove(ctx, old); err != nil && !errors.Is(err, collections.ErrNotFound) {
			return err
		}
	}

	deadlines, err := dueKeys(ctx, k.DeadlineDue, h)
	if err != nil {
		return err
	}
	for _, key := range deadlines {
		if err := k.DeadlineDue.Remove(ctx, key); err != nil {
			return err
		}
		if err := k.settleDeadline(ctx, key.K2(), key.K3()); err != nil {
			return err
		}
	}

	payouts, err := dueKeys(ctx, k.PayoutDue, h)
	if err != nil {
		return err
	}
	for _, key := range payouts {
		if err := k.PayoutDue.Remove(ctx, key); err != nil {
			return err
		}
		if err := k.payout(ctx, key.K2(), key.K3()); err != nil {
			return err
		}
	}
	return k.forgetExpiredQuotes(ctx, sdkCtx.BlockTime().Unix())
}

// blockHashOf is the block's hash as CometBFT reports it. The SDK's
// simulator drives the app without block hashes; only then a stand-in is
// derived from the chain id, height and time (predictable, so unsafe on a
// real network, where CometBFT always supplies the hash).
func blockHashOf(ctx sdk.Context) []byte {
	if h := ctx.HeaderHash(); len(h) > 0 {
		return h
	}
	sum := sha256.New()
	sum.Write([]byte("highway/escrow/no-block-hash\x00" + ctx.ChainID()))
	sum.Write(binary.BigEndian.AppendUint64(nil, uint64(ctx.BlockHeight())))
	sum.Write(binary.BigEndian.AppendUint64(nil, uint64(ctx.BlockTime().UnixNano())))
	return sum.Sum(nil)
}

// dueKeys collects the index entries due at or before height h. Collecting
// first keeps iteration and mutation apart.
func dueKeys(ctx context.Context, set collections.KeySet[collections.Triple[int64, uint64, uint64]], h int64) ([]collections.Triple[int64, uint64, uint64], error) {
	var out []collections.Triple[int64, uint64, uint64]
	err := set.Walk(ctx, collections.NewPrefixUntilTripleRange[int64, uint64, uint64](h), func(key collections.Triple[int64, uint64, uint64]) (bool, error) {
		out = append(out, key)
		return false, nil
	})
	return out, err
}

// settleDeadline runs when epoch e's proof deadline passes. An epoch
// without a valid proof is refunded to the buyer; "missed in a row" counts
// in epoch order here, so an early proof of a later epoch does not reset
// it out of turn.
func (k Keeper) settleDeadline(ctx context.Context, leaseID, e uint64) error {
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	lease, err := k.getLease(ctx, leaseID)
	if err != nil {
		return err
	}
	if lease.Status != types.LEASE_STATUS_ACTIVE {
		return nil // closed or disputed: nothing runs any more
	}
	settled, err := k.Epochs.Has(ctx, collections.Join(leaseID, e))
	if err != nil {
		return err
	}
	if settled {
		lease.MissedInRow = 0
	} else {
		if err := k.pay(ctx, lease.Denom, lease.Buyer, lease.PricePerEpoch); err != nil {
			return err
		}
		lease.Remaining = lease.Remaining.Sub(lease.PricePerEpoch)
		lease.Refunded = lease.Refunded.Add(lease.PricePerEpoch)
		lease.MissedInRow++
		lease.EpochsMissed++
		rec := types.EpochRecord{LeaseId: leaseID, Epoch: e, Status: types.EPOCH_STATUS_MISSED, Amount: lease.PricePerEpoch, SettledHeight: sdkCtx.BlockHeight()}
		if err := k.Epochs.Set(ctx, collections.Join(leaseID, e), rec); err != nil {
			return err
		}
		err := sdkCtx.EventManager().EmitTypedEvent(&types.EventEpochMissed{
			LeaseId: leaseID, Epoch: e, Refunded: lease.PricePerEpoch, MissedInRow: lease.MissedInRow,
		})
		if err != nil {
			return err
		}
	}
	lease.NextEpoch = e + 1
	switch {
	case lease.MissedInRow >= lease.MaxMissedEpochs:
		_, err = k.closeLease(ctx, &lease, "", ReasonMissedEpochs)
		return err
	case lease.NextEpoch >= lease.EpochsTotal:
		_, err = k.closeLease(ctx, &lease, "", ReasonCompleted)
		return err
	}
	if err := k.Leases.Set(ctx, leaseID, lease); err != nil {
		return err
	}
	return k.scheduleDeadline(ctx, lease, lease.NextEpoch)
}

// payout pays a cleared epoch to the provider, less the fee, once its
// dispute window has passed. A dispute froze it meanwhile if its record is
// no longer CLEARED.
func (k Keeper) payout(ctx context.Context, leaseID, e uint64) error {
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	rec, err := k.Epochs.Get(ctx, collections.Join(leaseID, e))
	if err != nil {
		return err
	}
	if rec.Status != types.EPOCH_STATUS_CLEARED {
		return nil
	}
	lease, err := k.getLease(ctx, leaseID)
	if err != nil {
		return err
	}
	fee := rec.Amount.MulRaw(int64(lease.FeeBps)).QuoRaw(10_000)
	net := rec.Amount.Sub(fee)
	if err := k.pay(ctx, lease.Denom, lease.Provider, net); err != nil {
		return err
	}
	if err := k.payFee(ctx, lease.Denom, fee); err != nil {
		return err
	}
	lease.Pending = lease.Pending.Sub(rec.Amount)
	lease.Paid = lease.Paid.Add(net)
	lease.Fees = lease.Fees.Add(fee)
	rec.Status = types.EPOCH_STATUS_PAID
	if err := k.Epochs.Set(ctx, collections.Join(leaseID, e), rec); err != nil {
		return err
	}
	if err := k.Leases.Set(ctx, leaseID, lease); err != nil {
		return err
	}
	return sdkCtx.EventManager().EmitTypedEvent(&types.EventPayout{
		LeaseId: leaseID, Epoch: e, Provider: lease.Provider, Amount: net, Fee: fee,
	})
}

// forgetExpiredQuotes drops used-quote records whose quotes expired before
// now: an expired quote is rejected on expiry alone.
func (k Keeper) forgetExpiredQuotes(ctx context.Context, now int64) error {
	var keys []collections.Triple[int64, string, uint64]
	err := k.QuoteExpiry.Walk(ctx, collections.NewPrefixUntilTripleRange[int64, string, uint64](now-1), func(key collections.Triple[int64, string, uint64]) (bool, error) {
		keys = append(keys, key)
		return len(keys) >= 1000, nil // bounded work per block; the rest next block
	})
	if err != nil {
		return err
	}
	for _, key := range keys {
		if err := k.QuoteExpiry.Remove(ctx, key); err != nil {
			return err
		}
		if err := k.UsedQuotes.Remove(ctx, collections.Join(key.K2(), key.K3())); err != nil {
			return err
		}
	}
	return nil
}

// Totals sums the escrow buckets over all leases, per denom.
type Totals struct {
	Remaining, Pending, Frozen math.Int
	Active                     uint64
}

// Held is what the module account must hold for these leases.
func (t *Totals) Held() math.Int {
	if t == nil {
		return math.ZeroInt()
	}
	return t.Remaining.Add(t.Pending).Add(t.Frozen)
}

// EscrowTotals walks every lease: for queries and invariants, never in a
// block's hot path. visit, if set, sees each lease on the way.
func (k Keeper) EscrowTotals(ctx context.Context, visit func(types.Lease)) (map[string]*Totals, error) {
	out := map[string]*Totals{}
	err := k.Leases.Walk(ctx, nil, func(_ uint64, l types.Lease) (bool, error) {
		if visit != nil {
			visit(l)
		}
		t, ok := out[l.Denom]
		if !ok {
			t = &Totals{Remaining: math.ZeroInt(), Pending: math.ZeroInt(), Frozen: math.ZeroInt()}
			out[l.Denom] = t
		}
		t.Remaining = t.Remaining.Add(l.Remaining)
		t.Pending = t.Pending.Add(l.Pending)
		t.Frozen = t.Frozen.Add(l.Frozen)
		if l.Status == types.LEASE_STATUS_ACTIVE {
			t.Active++
		}
		return false, nil
	})
	return out, err
}
