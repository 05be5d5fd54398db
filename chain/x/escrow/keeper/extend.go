package keeper

import (
	"context"

	errorsmod "cosmossdk.io/errors"
	"cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/chain/x/escrow/types"
)

// ExtendLease adds epochs to a running lease. The provider consents per
// extension with a fresh quote bound to the lease (extends_lease), so a
// buyer can never hold GPUs longer than the provider agreed, and a quote
// for a new lease cannot be spent on an old one or the other way round.
// The extension keeps every term of the lease: class, GPU count and price
// must be the lease's, and the new epochs run on the lease's own schedule,
// PoC terms and fee. It must land while the last epoch still runs; after
// that the lease is ending and a new lease is the way on. What a lease may
// hold unsettled at once stays within max_epochs_per_lease, so extending
// never lets a buyer prepay more than creating could. Every check runs
// before any write: a rejected message changes nothing.
func (m msgServer) ExtendLease(ctx context.Context, msg *types.MsgExtendLease) (*types.MsgExtendLeaseResponse, error) {
	if err := msg.ValidateBasic(); err != nil {
		return nil, err
	}
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	params, err := m.Params.Get(ctx)
	if err != nil {
		return nil, err
	}
	lease, err := m.getLease(ctx, msg.LeaseId)
	if err != nil {
		return nil, err
	}
	if msg.Buyer != lease.Buyer {
		return nil, errorsmod.Wrap(types.ErrUnauthorized, "only the lease's buyer can extend it")
	}
	if lease.Status != types.LEASE_STATUS_ACTIVE {
		return nil, errorsmod.Wrapf(types.ErrLeaseNotActive, "lease %d is %s", lease.Id, lease.Status)
	}
	if _, lastEnd, _ := epochBounds(lease, lease.EpochsTotal-1); sdkCtx.BlockHeight() >= lastEnd {
		return nil, errorsmod.Wrapf(types.ErrExtension, "lease %d's last epoch ended at block %d", lease.Id, lastEnd)
	}
	q := msg.Quote
	switch {
	case q.Buyer != msg.Buyer:
		return nil, errorsmod.Wrap(types.ErrUnauthorized, "the quote names another buyer")
	case q.Provider != lease.Provider:
		return nil, errorsmod.Wrap(types.ErrInvalidQuote, "the quote is not from the lease's provider")
	case q.GpuClass != lease.GpuClass || q.Gpus != lease.Gpus:
		return nil, errorsmod.Wrapf(types.ErrInvalidQuote, "the quote is for %d × %s, the lease for %d × %s", q.Gpus, q.GpuClass, lease.Gpus, lease.GpuClass)
	case !q.PricePerEpoch.Equal(lease.PricePerEpoch):
		return nil, errorsmod.Wrapf(types.ErrInvalidQuote, "the quote's price %s is not the lease's %s per epoch", q.PricePerEpoch, lease.PricePerEpoch)
	}
	// Unsettled epochs after the extension: the lease's prepaid exposure.
	if lease.EpochsTotal+q.Epochs < lease.EpochsTotal || lease.EpochsTotal+q.Epochs-lease.NextEpoch > params.MaxEpochsPerLease {
		return nil, errorsmod.Wrapf(types.ErrExtension, "%d epochs more would leave %d unsettled, above the limit of %d",
			q.Epochs, lease.EpochsTotal+q.Epochs-lease.NextEpoch, params.MaxEpochsPerLease)
	}
	if err := m.checkQuote(ctx, params, q); err != nil {
		return nil, err
	}
	added, err := q.PricePerEpoch.SafeMul(math.NewIntFromUint64(q.Epochs))
	if err != nil {
		return nil, errorsmod.Wrap(types.ErrInvalidAmount, "price × epochs overflows")
	}
	remaining, err := lease.Remaining.SafeAdd(added)
	if err != nil {
		return nil, errorsmod.Wrap(types.ErrInvalidAmount, "the lease's escrow would overflow")
	}
	// The lease's own denom: a params change since creation does not move
	// a running lease to another coin.
	buyer := sdk.MustAccAddressFromBech32(msg.Buyer)
	if err := m.bank.SendCoinsFromAccountToModule(ctx, buyer, types.ModuleName, coins(lease.Denom, added)); err != nil {
		return nil, errorsmod.Wrapf(types.ErrInsufficientFunds, "escrow of %s%s: %v", added, lease.Denom, err)
	}
	lease.EpochsTotal += q.Epochs
	lease.Remaining = remaining
	if err := m.Leases.Set(ctx, lease.Id, lease); err != nil {
		return nil, err
	}
	if err := m.useQuote(ctx, q); err != nil {
		return nil, err
	}
	err = sdkCtx.EventManager().EmitTypedEvent(&types.EventLeaseExtended{
		LeaseId: lease.Id, Epochs: q.Epochs, EpochsTotal: lease.EpochsTotal, Escrowed: added, QuoteNonce: q.Nonce,
	})
	if err != nil {
		return nil, err
	}
	return &types.MsgExtendLeaseResponse{Escrowed: added, EpochsTotal: lease.EpochsTotal}, nil
}
