package keeper

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"

	"cosmossdk.io/collections"
	"cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/poc"
)

// EndBlocker does only what is due at this height, found through the
// due-height indexes, never by scanning leases: it records this block's
// hash and time (for epoch seeds, sample seeds and proof windows), judges
// the proofs whose judging block this is, settles epochs whose deadline
// passed (refunding those without a verdict, ending leases that missed
// too many in a row or ran their course), pays out cleared epochs whose
// dispute window passed, and forgets quote nonces whose quotes have
// expired anyway. Judging comes first, so an epoch judged in its
// settlement block is settled with its verdict.
func (k Keeper) EndBlocker(ctx context.Context) error {
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	h := sdkCtx.BlockHeight()
	if err := k.BlockHashes.Set(ctx, h, blockHashOf(sdkCtx)); err != nil {
		return err
	}
	if err := k.BlockTimes.Set(ctx, h, sdkCtx.BlockTime().UnixMilli()); err != nil {
		return err
	}
	if old := h - types.BlockHashRetention; old > 0 {
		if err := k.BlockHashes.Remove(ctx, old); err != nil && !errors.Is(err, collections.ErrNotFound) {
			return err
		}
		if err := k.BlockTimes.Remove(ctx, old); err != nil && !errors.Is(err, collections.ErrNotFound) {
			return err
		}
	}

	// A bounded amount of work per block and queue (types.Max*PerBlock):
	// 10 000 leases created in one block all fall due in one block, and
	// doing them at once stalled it for most of a second. What does not
	// fit stays in its index and runs in the next blocks, oldest first;
	// every outcome is the same, only later by a few blocks (proof windows
	// are checked against heights when a proof arrives, not at settlement;
	// a dispute pays overdue payouts before it freezes).
	// The block's refunds and payouts are summed per account and sent once
	// at its end (payBatch).
	sends := &payBatch{}
	for _, due := range []struct {
		set collections.KeySet[collections.Triple[int64, uint64, uint64]]
		run func(context.Context, uint64, uint64, *payBatch) error
		cap int
	}{{k.JudgeDue, k.judge, types.MaxJudgesPerBlock}, {k.DeadlineDue, k.settleDeadline, types.MaxSettlementsPerBlock}, {k.PayoutDue, k.payout, types.MaxPayoutsPerBlock}} {
		keys, err := dueKeys(ctx, due.set, h, due.cap)
		if err != nil {
			return err
		}
		for _, key := range keys {
			if err := due.set.Remove(ctx, key); err != nil {
				return err
			}
			if err := due.run(ctx, key.K2(), key.K3(), sends); err != nil {
				return err
			}
		}
	}
	if err := k.sendBatch(ctx, sends); err != nil {
		return err
	}
	return k.forgetExpiredQuotes(ctx, sdkCtx.BlockTime().Unix())
}

// judge gives an epoch's pending proof its verdict. The sample seed is
// this block's hash, which did not exist when the proof was sent, so the
// prover could not know which nonces would be recomputed; the verdict is
// final either way: cleared, or missed and refunded (into sends).
func (k Keeper) judge(ctx context.Context, leaseID, e uint64, sends *payBatch) error {
	key := collections.Join(leaseID, e)
	pending, err := k.PendingProofs.Get(ctx, key)
	if errors.Is(err, collections.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := k.PendingProofs.Remove(ctx, key); err != nil {
		return err
	}
	if err := k.Judging.Remove(ctx, key); err != nil {
		return err
	}
	// An epoch has one verdict: should it somehow have one already (state
	// imported by hand), the proof is dropped, not judged a second time.
	if done, err := k.Epochs.Has(ctx, key); err != nil || done {
		return err
	}
	lease, err := k.getLease(ctx, leaseID)
	if err != nil {
		return err
	}
	seed, err := k.epochSeed(ctx, lease, e)
	if errors.Is(err, types.ErrSeedUnavailable) {
		// Carried past the block hashes kept (a backlog of MaxCarryBlocks):
		// the proof can no longer be checked. Settled as missed, refunded,
		// rather than an error that would halt every block from here on.
		return k.missEpoch(ctx, &lease, e, reasonRejectedProof+"its epoch's seed is no longer kept", pending.SubmittedHeight, pending.ValidNonces, pending.Required, sends)
	}
	if err != nil {
		return err
	}
	sample, err := k.BlockHashes.Get(ctx, sdk.UnwrapSDKContext(ctx).BlockHeight())
	if err != nil {
		return err
	}
	pp := pending.Poc.ToPoC()
	err = poc.VerifyBytes(pp, seed, poc.Target{Difficulty: pending.Difficulty, Required: pending.Required}, pending.Proof, sample)
	if err != nil {
		return k.missEpoch(ctx, &lease, e, reasonRejectedProof+err.Error(), pending.SubmittedHeight, pending.ValidNonces, pending.Required, sends)
	}
	return k.clearEpoch(ctx, &lease, e, pending)
}

// clearEpoch records a cleared epoch: its price moves from remaining to
// pending and is paid after the dispute window. If a dispute froze the
// lease meanwhile, the price is already part of the frozen escrow: the
// verdict is recorded (as evidence for the arbiter) and no money moves.
func (k Keeper) clearEpoch(ctx context.Context, lease *types.Lease, e uint64, pending types.PendingProof) error {
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	h := sdkCtx.BlockHeight()
	rec := types.EpochRecord{
		LeaseId: lease.Id, Epoch: e, Status: types.EPOCH_STATUS_FROZEN, ValidNonces: pending.ValidNonces,
		Amount: lease.PricePerEpoch, SettledHeight: h, SubmittedHeight: pending.SubmittedHeight,
	}
	if lease.DisputedHeight == 0 {
		rec.Status = types.EPOCH_STATUS_CLEARED
		rec.PayoutHeight = h + int64(lease.DisputeWindowBlocks)
		lease.Remaining = lease.Remaining.Sub(lease.PricePerEpoch)
		lease.Pending = lease.Pending.Add(lease.PricePerEpoch)
		if err := k.PayoutDue.Set(ctx, collections.Join3(rec.PayoutHeight, lease.Id, e)); err != nil {
			return err
		}
	}
	lease.EpochsCleared++
	if err := k.Epochs.Set(ctx, collections.Join(lease.Id, e), rec); err != nil {
		return err
	}
	if err := k.Leases.Set(ctx, lease.Id, *lease); err != nil {
		return err
	}
	sdkCtx.EventManager().EmitEvent(proofAcceptedEvent(&types.EventProofAccepted{
		LeaseId: lease.Id, Epoch: e, ValidNonces: rec.ValidNonces, Required: pending.Required,
		Amount: rec.Amount, PayoutHeight: rec.PayoutHeight,
	}))
	return nil
}

// missEpoch records a missed epoch and refunds its price to the buyer,
// unless a dispute froze the lease first (then the arbiter splits it).
// The refund goes into sends, the end of block's batch, or straight to
// the buyer when sends is nil (a message's handler).
// The in-a-row count that can end the lease moves at settlement, in epoch
// order; the event reports the run as it stands, this epoch included.
func (k Keeper) missEpoch(ctx context.Context, lease *types.Lease, e uint64, reason string, submitted int64, valid, required uint64, sends *payBatch) error {
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	refund := math.ZeroInt()
	if lease.DisputedHeight == 0 {
		refund = lease.PricePerEpoch
		if err := k.refund(ctx, sends, lease.Denom, lease.Buyer, refund); err != nil {
			return err
		}
		lease.Remaining = lease.Remaining.Sub(refund)
		lease.Refunded = lease.Refunded.Add(refund)
	}
	lease.EpochsMissed++
	rec := types.EpochRecord{
		LeaseId: lease.Id, Epoch: e, Status: types.EPOCH_STATUS_MISSED, ValidNonces: valid, Amount: lease.PricePerEpoch,
		SettledHeight: sdkCtx.BlockHeight(), Reason: reason, SubmittedHeight: submitted,
	}
	if err := k.Epochs.Set(ctx, collections.Join(lease.Id, e), rec); err != nil {
		return err
	}
	if err := k.Leases.Set(ctx, lease.Id, *lease); err != nil {
		return err
	}
	run, err := k.missedRun(ctx, *lease, e)
	if err != nil {
		return err
	}
	sdkCtx.EventManager().EmitEvent(epochMissedEvent(&types.EventEpochMissed{
		LeaseId: lease.Id, Epoch: e, Refunded: refund, MissedInRow: run, Reason: reason, ValidNonces: valid, Required: required,
	}))
	return nil
}

// missedRun counts the missed epochs ending at e (e is missed), looking
// back no further than the lease's limit.
func (k Keeper) missedRun(ctx context.Context, lease types.Lease, e uint64) (uint32, error) {
	run := uint32(1)
	for run < lease.MaxMissedEpochs && uint64(run) <= e {
		rec, err := k.Epochs.Get(ctx, collections.Join(lease.Id, e-uint64(run)))
		if errors.Is(err, collections.ErrNotFound) {
			break
		}
		if err != nil {
			return 0, err
		}
		if rec.Status != types.EPOCH_STATUS_MISSED {
			break
		}
		run++
	}
	return run, nil
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

// dueKeys collects up to limit index entries due at or before height h,
// in due order (height, then lease, then epoch). Collecting first keeps
// iteration and mutation apart.
func dueKeys(ctx context.Context, set collections.KeySet[collections.Triple[int64, uint64, uint64]], h int64, limit int) ([]collections.Triple[int64, uint64, uint64], error) {
	var out []collections.Triple[int64, uint64, uint64]
	if limit <= 0 {
		return nil, nil
	}
	err := set.Walk(ctx, collections.NewPrefixUntilTripleRange[int64, uint64, uint64](h), func(key collections.Triple[int64, uint64, uint64]) (bool, error) {
		out = append(out, key)
		return len(out) >= limit, nil
	})
	return out, err
}

// settleDeadline runs when epoch e's settlement height passes: every
// proof that could land for it has been judged by now. An epoch with no
// verdict had no proof and is refunded to the buyer; "missed in a row"
// counts in epoch order here, so an early proof of a later epoch does not
// reset it out of turn. Refunds go into sends.
func (k Keeper) settleDeadline(ctx context.Context, leaseID, e uint64, sends *payBatch) error {
	lease, err := k.getLease(ctx, leaseID)
	if err != nil {
		return err
	}
	if lease.Status != types.LEASE_STATUS_ACTIVE {
		return nil // closed or disputed: nothing runs any more
	}
	// Every proof for the epoch is due by now; one that is not (a lease
	// whose terms came from outside, with no spread) is judged here, so the
	// epoch is never refunded and then cleared.
	if p, err := k.PendingProofs.Get(ctx, collections.Join(leaseID, e)); err == nil {
		if err := k.JudgeDue.Remove(ctx, collections.Join3(p.JudgeHeight, leaseID, e)); err != nil {
			return err
		}
		if err := k.judge(ctx, leaseID, e, sends); err != nil {
			return err
		}
		if lease, err = k.getLease(ctx, leaseID); err != nil {
			return err
		}
	} else if !errors.Is(err, collections.ErrNotFound) {
		return err
	}
	rec, err := k.Epochs.Get(ctx, collections.Join(leaseID, e))
	switch {
	case errors.Is(err, collections.ErrNotFound):
		if err := k.missEpoch(ctx, &lease, e, ReasonNoProof, 0, 0, 0, sends); err != nil {
			return err
		}
		lease.MissedInRow++
	case err != nil:
		return err
	case rec.Status == types.EPOCH_STATUS_MISSED:
		lease.MissedInRow++ // refunded when its proof was rejected
	default:
		lease.MissedInRow = 0
	}
	lease.NextEpoch = e + 1
	switch {
	case lease.MissedInRow >= lease.MaxMissedEpochs:
		_, err = k.closeLease(ctx, &lease, "", ReasonMissedEpochs, sends)
		return err
	case lease.NextEpoch >= lease.EpochsTotal:
		_, err = k.closeLease(ctx, &lease, "", ReasonCompleted, sends)
		return err
	}
	if err := k.Leases.Set(ctx, leaseID, lease); err != nil {
		return err
	}
	return k.scheduleDeadline(ctx, lease, lease.NextEpoch)
}

// payout pays a cleared epoch to the provider, less the fee, once its
// dispute window has passed. A dispute froze it meanwhile if its record is
// no longer CLEARED. The money goes into batch, sent at the end of the
// block (sendBatch).
func (k Keeper) payout(ctx context.Context, leaseID, e uint64, batch *payBatch) error {
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
	batch.credit(lease.Denom, lease.Provider, net)
	batch.fee(lease.Denom, fee)
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
	sdkCtx.EventManager().EmitEvent(payoutEvent(&types.EventPayout{
		LeaseId: leaseID, Epoch: e, Provider: lease.Provider, Amount: net, Fee: fee,
	}))
	return nil
}

// payOverdue pays the lease's cleared epochs whose dispute window closed
// before this block but whose payout the end-of-block caps have not
// reached yet: they are the provider's, and a dispute opened now must not
// freeze them (it could not have, had they run on time). Their index
// entries stay; payout skips an epoch already paid.
func (k Keeper) payOverdue(ctx context.Context, lease *types.Lease, h int64) error {
	var due []uint64
	err := k.Epochs.Walk(ctx, collections.NewPrefixedPairRange[uint64, uint64](lease.Id), func(key collections.Pair[uint64, uint64], r types.EpochRecord) (bool, error) {
		if r.Status == types.EPOCH_STATUS_CLEARED && r.PayoutHeight < h {
			due = append(due, key.K2())
		}
		return false, nil
	})
	if err != nil || len(due) == 0 {
		return err
	}
	batch := &payBatch{}
	for _, e := range due {
		if err := k.payout(ctx, lease.Id, e, batch); err != nil {
			return err
		}
	}
	if err := k.sendBatch(ctx, batch); err != nil {
		return err
	}
	l, err := k.getLease(ctx, lease.Id)
	if err != nil {
		return err
	}
	*lease = l
	return nil
}

// payBatch is one block's money out of escrow, payouts and refunds summed
// per (denom, account) and the fees per denom: a provider with many
// leases, or many epochs carried into one block, gets one bank send, not
// one per epoch, and so does a buyer refunded for many (a burst of 200
// refunds to one buyer was 200 sends, a quarter of such a block's time).
// Sends go out in sorted order (no map order reaches the state).
type payBatch struct {
	net  map[[2]string]math.Int // (denom, account)
	fees map[string]math.Int
}

// credit adds amount for addr.
func (b *payBatch) credit(denom, addr string, amount math.Int) {
	if b.net == nil {
		b.net = map[[2]string]math.Int{}
	}
	key := [2]string{denom, addr}
	if cur, ok := b.net[key]; ok {
		amount = cur.Add(amount)
	}
	b.net[key] = amount
}

// fee adds a marketplace fee.
func (b *payBatch) fee(denom string, fee math.Int) {
	if b.fees == nil {
		b.fees = map[string]math.Int{}
	}
	if cur, ok := b.fees[denom]; ok {
		fee = cur.Add(fee)
	}
	b.fees[denom] = fee
}

// refund pays a buyer: into sends when there is a batch, at once when
// sends is nil.
func (k Keeper) refund(ctx context.Context, sends *payBatch, denom, addr string, amount math.Int) error {
	if sends == nil {
		return k.pay(ctx, denom, addr, amount)
	}
	sends.credit(denom, addr, amount)
	return nil
}

// sendBatch makes the batch's bank sends. Until then the money paid or
// refunded is still in the module account while the leases' books
// already count it gone: nothing between reads the account (a message
// never runs inside EndBlock), and the invariant is checked after the
// block.
func (k Keeper) sendBatch(ctx context.Context, b *payBatch) error {
	keys := make([][2]string, 0, len(b.net))
	for key := range b.net {
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(x, y [2]string) int { return cmp.Or(cmp.Compare(x[0], y[0]), cmp.Compare(x[1], y[1])) })
	for _, key := range keys {
		if err := k.pay(ctx, key[0], key[1], b.net[key]); err != nil {
			return err
		}
	}
	denoms := make([]string, 0, len(b.fees))
	for d := range b.fees {
		denoms = append(denoms, d)
	}
	slices.Sort(denoms)
	for _, d := range denoms {
		if err := k.payFee(ctx, d, b.fees[d]); err != nil {
			return err
		}
	}
	return nil
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
