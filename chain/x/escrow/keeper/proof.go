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
	poc    types.PoCParams
}

// proofTask derives epoch e's seed (epochSeed) and its target from the
// lease's PoC terms: its class rate, GPU count and proof work window.
func (k Keeper) proofTask(ctx context.Context, lease types.Lease, e uint64) (task, error) {
	seed, err := k.epochSeed(ctx, lease, e)
	if err != nil {
		return task{}, err
	}
	pp, milli := lease.Poc, lease.MilliH100
	if milli == 0 {
		// A lease from before it copied its PoC terms: the params' apply.
		params, err := k.Params.Get(ctx)
		if err != nil {
			return task{}, err
		}
		if milli, err = params.MilliH100(lease.GpuClass); err != nil {
			return task{}, err
		}
		pp = params.Poc
	}
	target, err := poc.EpochTargetMilli(pp.ToPoC(), milli*uint64(lease.Gpus), lease.ProofWorkSeconds)
	if err != nil {
		return task{}, errorsmod.Wrapf(types.ErrInvalidProof, "target: %v", err)
	}
	return task{seed: seed, target: target, poc: pp}, nil
}

// epochSeed is poc.DeriveSeed over the hash of the block at the epoch's
// start (unknowable before that block), the lease, the epoch and the
// provider's address.
func (k Keeper) epochSeed(ctx context.Context, lease types.Lease, e uint64) (poc.Seed, error) {
	start, _, _ := epochBounds(lease, e)
	hash, err := k.BlockHashes.Get(ctx, start)
	if errors.Is(err, collections.ErrNotFound) {
		return poc.Seed{}, errorsmod.Wrapf(types.ErrSeedUnavailable, "no block hash for height %d", start)
	}
	if err != nil {
		return poc.Seed{}, err
	}
	provider, err := sdk.AccAddressFromBech32(lease.Provider)
	if err != nil {
		return poc.Seed{}, err
	}
	return poc.DeriveSeed(hash, lease.Id, e, provider), nil
}

// window is an epoch's proof window in block time (Unix ms).
type window struct {
	open, close int64
	known       bool // false until the first block that can carry the proof exists
}

// proofWindow measures epoch e's window from the time of block start + 1,
// the first block that can carry its proof: the seed became public when
// block start was committed, and CometBFT stamps the next block with the
// time of that commit (the median of the validators' votes, so no single
// validator sets it). The window is the lease's work seconds plus its
// grace: the target is sized for the work seconds alone, so the grace is
// all the extra proving time anyone gets. h is the height the proof
// would land at; when it is start + 1 the current block's time is the
// window's opening.
func (k Keeper) proofWindow(ctx context.Context, lease types.Lease, e uint64, h int64) (window, error) {
	start, _, _ := epochBounds(lease, e)
	open := start + 1
	var t int64
	switch {
	case h < open:
		return window{}, nil
	case h == open:
		t = sdk.UnwrapSDKContext(ctx).BlockTime().UnixMilli()
	default:
		var err error
		t, err = k.BlockTimes.Get(ctx, open)
		if errors.Is(err, collections.ErrNotFound) {
			return window{}, nil
		}
		if err != nil {
			return window{}, err
		}
	}
	return window{open: t, close: t + int64(lease.ProofWorkSeconds)*1000 + int64(lease.ProofGraceMs), known: true}, nil
}

// JudgeOffset is how many blocks after block h + 1 the proof that landed
// in block h is judged: SHA-256 over a tag, block h's hash, the lease and
// the epoch, its first 8 bytes big-endian, modulo the lease's spread. A
// validator that wants to grind the judging block's hash must propose it;
// with the offset unknown until block h exists, it cannot time its proof
// to land just before a block it proposes (docs/poc.md §11).
func JudgeOffset(blockHash []byte, leaseID, epoch, spread uint64) int64 {
	if spread <= 1 {
		return 0
	}
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(len(tagJudge)))
	h.Write(b[:])
	h.Write([]byte(tagJudge))
	binary.BigEndian.PutUint64(b[:], uint64(len(blockHash)))
	h.Write(b[:])
	h.Write(blockHash)
	binary.BigEndian.PutUint64(b[:], leaseID)
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], epoch)
	h.Write(b[:])
	sum := h.Sum(nil)
	return int64(binary.BigEndian.Uint64(sum[:8]) % spread)
}

// tagJudge separates judgeOffset's hash from every other hash of a block
// hash (poc's tags are "highway/poc/v1/…").
const tagJudge = "highway/escrow/v1/judge"
