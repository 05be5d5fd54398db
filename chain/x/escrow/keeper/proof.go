package keeper

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"

	"cosmossdk.io/collections"
	errorsmod "cosmossdk.io/errors"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/poc"
)

// task is what one epoch of one lease must prove.
type task struct {
	seed   poc.Seed
	target poc.Target
}

// proofTask derives epoch e's seed from the hash of the block at the
// epoch's start (unknowable before that block), the lease, the epoch and
// the provider's address, and its target from the class rate, the GPU
// count and the lease's proof work window.
func (k Keeper) proofTask(ctx context.Context, lease types.Lease, e uint64, params types.Params) (task, error) {
	start, _, _ := epochBounds(lease, e)
	hash, err := k.BlockHashes.Get(ctx, start)
	if errors.Is(err, collections.ErrNotFound) {
		return task{}, errorsmod.Wrapf(types.ErrSeedUnavailable, "no block hash for height %d", start)
	}
	if err != nil {
		return task{}, err
	}
	provider, err := sdk.AccAddressFromBech32(lease.Provider)
	if err != nil {
		return task{}, err
	}
	milli, err := params.MilliH100(lease.GpuClass)
	if err != nil {
		return task{}, err
	}
	target, err := poc.EpochTargetMilli(params.Poc.ToPoC(), milli*uint64(lease.Gpus), lease.ProofWorkSeconds)
	if err != nil {
		return task{}, errorsmod.Wrapf(types.ErrInvalidProof, "target: %v", err)
	}
	return task{seed: poc.DeriveSeed(hash, lease.Id, e, provider), target: target}, nil
}

// sampleSeed is the verifier's randomness: the hash of the block that
// includes the proof, which the prover cannot know when it submits (a
// proposer could grind its own block's hash; docs/poc.md §9 weighs that).
// Outside block execution (CheckTx, simulation) there is no header hash,
// and the previous block's hash, bound to the height, stands in: those
// results do not change state.
func (k Keeper) sampleSeed(ctx context.Context) ([]byte, error) {
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	if h := sdkCtx.HeaderHash(); len(h) > 0 {
		return h, nil
	}
	prev, err := k.BlockHashes.Get(ctx, sdkCtx.BlockHeight()-1)
	if err != nil && !errors.Is(err, collections.ErrNotFound) {
		return nil, err
	}
	sum := sha256.New()
	sum.Write([]byte("highway/escrow/sample-fallback"))
	sum.Write(prev)
	sum.Write(binary.BigEndian.AppendUint64(nil, uint64(sdkCtx.BlockHeight())))
	return sum.Sum(nil), nil
}
