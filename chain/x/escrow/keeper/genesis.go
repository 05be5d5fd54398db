package keeper

import (
	"context"
	"errors"

	"cosmossdk.io/collections"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/chain/x/escrow/types"
)

// InitGenesis loads state and rebuilds the indexes (by party, due heights,
// quote expiry) from it, so exported genesis stays small and cannot carry
// an index that disagrees with the leases.
func (k Keeper) InitGenesis(ctx context.Context, gs types.GenesisState) error {
	if err := gs.Validate(); err != nil {
		return err
	}
	if err := k.Params.Set(ctx, gs.Params); err != nil {
		return err
	}
	next := gs.NextLeaseId
	if next == 0 {
		next = 1
	}
	if err := k.LeaseSeq.Set(ctx, next); err != nil {
		return err
	}
	for _, l := range gs.Leases {
		if err := k.Leases.Set(ctx, l.Id, l); err != nil {
			return err
		}
		if err := k.ByBuyer.Set(ctx, collections.Join(sdk.MustAccAddressFromBech32(l.Buyer), l.Id)); err != nil {
			return err
		}
		if err := k.ByProvider.Set(ctx, collections.Join(sdk.MustAccAddressFromBech32(l.Provider), l.Id)); err != nil {
			return err
		}
		if l.Status == types.LEASE_STATUS_ACTIVE && l.NextEpoch < l.EpochsTotal {
			if err := k.scheduleDeadline(ctx, l, l.NextEpoch); err != nil {
				return err
			}
		}
	}
	for _, r := range gs.Epochs {
		if err := k.Epochs.Set(ctx, collections.Join(r.LeaseId, r.Epoch), r); err != nil {
			return err
		}
		if r.Status == types.EPOCH_STATUS_CLEARED {
			if err := k.PayoutDue.Set(ctx, collections.Join3(r.PayoutHeight, r.LeaseId, r.Epoch)); err != nil {
				return err
			}
		}
	}
	for _, u := range gs.UsedQuotes {
		if err := k.UsedQuotes.Set(ctx, collections.Join(u.Provider, u.Nonce), u.ExpiresAt); err != nil {
			return err
		}
		if err := k.QuoteExpiry.Set(ctx, collections.Join3(u.ExpiresAt, u.Provider, u.Nonce)); err != nil {
			return err
		}
	}
	for _, b := range gs.BlockHashes {
		if err := k.BlockHashes.Set(ctx, b.Height, b.Hash); err != nil {
			return err
		}
		// A genesis exported before block times were kept has none: leave
		// the time unknown (the epoch's last block still bounds the
		// window) rather than the Unix epoch, which would close it.
		if b.TimeUnixMs == 0 {
			continue
		}
		if err := k.BlockTimes.Set(ctx, b.Height, b.TimeUnixMs); err != nil {
			return err
		}
	}
	for _, p := range gs.PendingProofs {
		if err := k.Judging.Set(ctx, collections.Join(p.LeaseId, p.Epoch)); err != nil {
			return err
		}
		if err := k.PendingProofs.Set(ctx, collections.Join(p.LeaseId, p.Epoch), p); err != nil {
			return err
		}
		if err := k.JudgeDue.Set(ctx, collections.Join3(p.JudgeHeight, p.LeaseId, p.Epoch)); err != nil {
			return err
		}
	}
	return nil
}

// ExportGenesis writes the state out (indexes are rebuilt on import).
func (k Keeper) ExportGenesis(ctx context.Context) (*types.GenesisState, error) {
	params, err := k.Params.Get(ctx)
	if err != nil {
		return nil, err
	}
	next, err := k.LeaseSeq.Peek(ctx)
	if err != nil {
		return nil, err
	}
	gs := &types.GenesisState{Params: params, NextLeaseId: next}
	if err := k.Leases.Walk(ctx, nil, func(_ uint64, l types.Lease) (bool, error) {
		gs.Leases = append(gs.Leases, l)
		return false, nil
	}); err != nil {
		return nil, err
	}
	if err := k.Epochs.Walk(ctx, nil, func(_ collections.Pair[uint64, uint64], r types.EpochRecord) (bool, error) {
		gs.Epochs = append(gs.Epochs, r)
		return false, nil
	}); err != nil {
		return nil, err
	}
	if err := k.UsedQuotes.Walk(ctx, nil, func(key collections.Pair[string, uint64], exp int64) (bool, error) {
		gs.UsedQuotes = append(gs.UsedQuotes, types.UsedQuote{Provider: key.K1(), Nonce: key.K2(), ExpiresAt: exp})
		return false, nil
	}); err != nil {
		return nil, err
	}
	if err := k.BlockHashes.Walk(ctx, nil, func(h int64, hash []byte) (bool, error) {
		t, err := k.BlockTimes.Get(ctx, h)
		if err != nil && !errors.Is(err, collections.ErrNotFound) {
			return true, err
		}
		gs.BlockHashes = append(gs.BlockHashes, types.BlockHash{Height: h, Hash: hash, TimeUnixMs: t})
		return false, nil
	}); err != nil {
		return nil, err
	}
	if err := k.PendingProofs.Walk(ctx, nil, func(_ collections.Pair[uint64, uint64], p types.PendingProof) (bool, error) {
		gs.PendingProofs = append(gs.PendingProofs, p)
		return false, nil
	}); err != nil {
		return nil, err
	}
	return gs, nil
}
