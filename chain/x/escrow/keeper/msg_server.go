package keeper

import (
	"context"
	"errors"
	"fmt"

	"cosmossdk.io/collections"
	errorsmod "cosmossdk.io/errors"
	"cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/poc"
)

// Close reasons recorded on leases and in EventLeaseClosed.
const (
	ReasonBuyer           = "buyer"
	ReasonProvider        = "provider"
	ReasonCompleted       = "completed"
	ReasonMissedEpochs    = "missed_epochs"
	ReasonDisputeResolved = "dispute_resolved"
)

// VerifyGasPerKMAC is the gas charged per thousand int8 MACs of PoC
// verification work (poc.VerifyCost), on top of the usual store and byte
// costs: at default params a proof costs ≈ 14.7k gas of compute.
const VerifyGasPerKMAC = 1

type msgServer struct {
	Keeper
}

// NewMsgServerImpl returns the Msg service over k.
func NewMsgServerImpl(k Keeper) types.MsgServer {
	return &msgServer{Keeper: k}
}

var _ types.MsgServer = msgServer{}

// CreateLease checks the provider's quote, moves price × epochs from the
// buyer into escrow and records the lease. Every check runs before any
// write, so a rejected message changes nothing.
func (m msgServer) CreateLease(ctx context.Context, msg *types.MsgCreateLease) (*types.MsgCreateLeaseResponse, error) {
	if err := msg.ValidateBasic(); err != nil {
		return nil, err
	}
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	params, err := m.Params.Get(ctx)
	if err != nil {
		return nil, err
	}
	q := msg.Quote
	if q.Buyer != msg.Buyer {
		return nil, errorsmod.Wrap(types.ErrUnauthorized, "the quote names another buyer")
	}
	milli, err := params.MilliH100(q.GpuClass)
	if err != nil {
		return nil, err
	}
	if q.Epochs > params.MaxEpochsPerLease {
		return nil, errorsmod.Wrapf(types.ErrInvalidQuote, "at most %d epochs per lease", params.MaxEpochsPerLease)
	}
	if err := m.checkQuote(ctx, params, q); err != nil {
		return nil, err
	}
	total, err := q.PricePerEpoch.SafeMul(math.NewIntFromUint64(q.Epochs))
	if err != nil {
		return nil, errorsmod.Wrap(types.ErrInvalidAmount, "price × epochs overflows")
	}
	// The epoch target must be computable for these terms, or no proof
	// could ever clear and the buyer would pay for nothing.
	if _, err := poc.EpochTargetMilli(params.Poc.ToPoC(), milli*uint64(q.Gpus), params.ProofWorkSeconds); err != nil {
		return nil, errorsmod.Wrapf(types.ErrInvalidQuote, "no PoC target for %d × %s: %v", q.Gpus, q.GpuClass, err)
	}
	buyer := sdk.MustAccAddressFromBech32(msg.Buyer)
	provider := sdk.MustAccAddressFromBech32(q.Provider)
	if err := m.bank.SendCoinsFromAccountToModule(ctx, buyer, types.ModuleName, coins(params.Denom, total)); err != nil {
		return nil, errorsmod.Wrapf(types.ErrInsufficientFunds, "escrow of %s%s: %v", total, params.Denom, err)
	}

	id, err := m.LeaseSeq.Next(ctx)
	if err != nil {
		return nil, err
	}
	lease := types.Lease{
		Id: id, Buyer: msg.Buyer, Provider: q.Provider, GpuClass: q.GpuClass, Gpus: q.Gpus,
		Denom: params.Denom, PricePerEpoch: q.PricePerEpoch, EpochsTotal: q.Epochs,
		StartHeight: sdkCtx.BlockHeight(), EpochBlocks: params.EpochBlocks, ProofGraceMs: params.ProofGraceMs,
		JudgeSpreadBlocks: params.JudgeSpreadBlocks, DisputeWindowBlocks: params.DisputeWindowBlocks,
		MaxMissedEpochs: params.MaxMissedEpochs, FeeBps: params.FeeBps, ProofWorkSeconds: params.ProofWorkSeconds,
		Poc: params.Poc, MilliH100: milli,
		Status: types.LEASE_STATUS_ACTIVE, Remaining: total, Pending: math.ZeroInt(), Frozen: math.ZeroInt(),
		Paid: math.ZeroInt(), Fees: math.ZeroInt(), Refunded: math.ZeroInt(), QuoteNonce: q.Nonce,
	}
	if err := m.Leases.Set(ctx, id, lease); err != nil {
		return nil, err
	}
	if err := m.ByBuyer.Set(ctx, collections.Join(buyer, id)); err != nil {
		return nil, err
	}
	if err := m.ByProvider.Set(ctx, collections.Join(provider, id)); err != nil {
		return nil, err
	}
	if err := m.useQuote(ctx, q); err != nil {
		return nil, err
	}
	if err := m.scheduleDeadline(ctx, lease, 0); err != nil {
		return nil, err
	}
	err = sdkCtx.EventManager().EmitTypedEvent(&types.EventLeaseCreated{
		LeaseId: id, Buyer: msg.Buyer, Provider: q.Provider, GpuClass: q.GpuClass, Gpus: q.Gpus,
		PricePerEpoch: q.PricePerEpoch, Epochs: q.Epochs, Escrowed: total, StartHeight: lease.StartHeight, QuoteNonce: q.Nonce,
	})
	if err != nil {
		return nil, err
	}
	return &types.MsgCreateLeaseResponse{LeaseId: id}, nil
}

// Verdicts in MsgSubmitProofResponse.
const (
	VerdictJudging = "judging"
	VerdictMissed  = "missed"
)

// Reasons recorded on missed epochs and in EventEpochMissed.
const (
	ReasonNoProof       = "no proof by the deadline"
	reasonRejectedProof = "proof rejected: "
)

// SubmitProof takes an epoch's one proof. What the provider could not have
// meant is rejected and changes nothing: a wrong signer, a lease that is
// not active, an epoch that does not exist, is not open yet or whose
// window has closed, an epoch that already had its proof. Anything else is
// the epoch's one attempt: a proof that fails a check needing no sampling
// (malformed, wrong version, too few nonces) settles the epoch as missed
// at once; one that passes waits for the block that judges it, whose hash
// (unknown now) picks the nonces recomputed. Gas for that verification is
// charged here, so a spammer pays for what it makes validators compute.
func (m msgServer) SubmitProof(ctx context.Context, msg *types.MsgSubmitProof) (*types.MsgSubmitProofResponse, error) {
	if err := msg.ValidateBasic(); err != nil {
		return nil, err
	}
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	lease, err := m.getLease(ctx, msg.LeaseId)
	if err != nil {
		return nil, err
	}
	if msg.Provider != lease.Provider {
		return nil, errorsmod.Wrap(types.ErrUnauthorized, "only the lease's provider submits proofs")
	}
	if lease.Status != types.LEASE_STATUS_ACTIVE {
		return nil, errorsmod.Wrapf(types.ErrLeaseNotActive, "lease %d is %s", lease.Id, lease.Status)
	}
	if msg.Epoch >= lease.EpochsTotal {
		return nil, errorsmod.Wrapf(types.ErrWrongEpoch, "lease %d has epochs 0..%d", lease.Id, lease.EpochsTotal-1)
	}
	h := sdkCtx.BlockHeight()
	simulate := sdkCtx.ExecMode() == sdk.ExecModeSimulate
	if simulate {
		// A simulation runs on the last committed block; the transaction
		// lands in the next one at the earliest, so judge the window
		// there. Otherwise, in the one block after the start block is
		// committed (the task's seed exists, the window is open for the
		// next block), simulating a valid proof failed.
		h++
	}
	start, end, _ := epochBounds(lease, msg.Epoch)
	if h <= start {
		return nil, errorsmod.Wrapf(types.ErrProofWindow, "epoch %d opens after block %d (now %d)", msg.Epoch, start, h)
	}
	if h > end {
		return nil, errorsmod.Wrapf(types.ErrProofWindow, "epoch %d closed at block %d (now %d)", msg.Epoch, end, h)
	}
	win, err := m.proofWindow(ctx, lease, msg.Epoch, h)
	if err != nil {
		return nil, err
	}
	// A simulation sees the last block's time, earlier than the block the
	// transaction will land in: it can only be lenient here, and delivery
	// decides. (The window's opening time is always known for blocks the
	// chain produced; only state imported without block times lacks it,
	// and then the epoch's last block is the bound.)
	if now := sdkCtx.BlockTime().UnixMilli(); win.known && now > win.close {
		return nil, errorsmod.Wrapf(types.ErrProofWindow, "epoch %d's window closed at %d ms (block time %d ms: %d ms late)",
			msg.Epoch, win.close, now, now-win.close)
	}
	key := collections.Join(lease.Id, msg.Epoch)
	for _, has := range []func(context.Context, collections.Pair[uint64, uint64]) (bool, error){m.Epochs.Has, m.PendingProofs.Has} {
		done, err := has(ctx, key)
		if err != nil {
			return nil, err
		}
		if done {
			return nil, errorsmod.Wrapf(types.ErrDuplicateProof, "lease %d epoch %d", lease.Id, msg.Epoch)
		}
	}
	task, err := m.proofTask(ctx, lease, msg.Epoch)
	if err != nil {
		return nil, err
	}
	pp := task.poc.ToPoC()
	sdkCtx.GasMeter().ConsumeGas(poc.VerifyCost(pp)/1000*VerifyGasPerKMAC, "proof-of-compute verification")
	proof, err := poc.DecodeProof(pp, msg.Proof)
	if err == nil {
		err = poc.CheckProof(pp, task.target, proof)
	}
	valid := uint64(len(proof.Nonces))
	if err != nil {
		// The one attempt, and it can never clear: no sample is needed to
		// say so, and waiting for one would only delay the refund.
		reason := reasonRejectedProof + err.Error()
		if err := m.missEpoch(ctx, &lease, msg.Epoch, reason, h, valid, task.target.Required, nil); err != nil {
			return nil, err
		}
		return &types.MsgSubmitProofResponse{ValidNonces: valid, Verdict: VerdictMissed, Reason: reason}, nil
	}
	judge := h + 1 + JudgeOffset(blockHashOf(sdkCtx), lease.Id, msg.Epoch, lease.JudgeSpreadBlocks)
	pending := types.PendingProof{
		LeaseId: lease.Id, Epoch: msg.Epoch, Proof: msg.Proof, ValidNonces: valid, SubmittedHeight: h, JudgeHeight: judge,
		Poc: task.poc, Difficulty: task.target.Difficulty, Required: task.target.Required,
	}
	if err := m.PendingProofs.Set(ctx, key, pending); err != nil {
		return nil, err
	}
	if err := m.Judging.Set(ctx, key); err != nil {
		return nil, err
	}
	if err := m.JudgeDue.Set(ctx, collections.Join3(judge, lease.Id, msg.Epoch)); err != nil {
		return nil, err
	}
	err = sdkCtx.EventManager().EmitTypedEvent(&types.EventProofSubmitted{
		LeaseId: lease.Id, Epoch: msg.Epoch, ValidNonces: valid, Required: task.target.Required, JudgeHeight: judge,
	})
	if err != nil {
		return nil, err
	}
	return &types.MsgSubmitProofResponse{ValidNonces: valid, JudgeHeight: judge, Verdict: VerdictJudging}, nil
}

// CloseLease ends an active lease at the buyer's or provider's request:
// the unearned escrow (every unsettled epoch, the current one included)
// goes back to the buyer now; pending amounts are paid after their
// dispute window as usual.
func (m msgServer) CloseLease(ctx context.Context, msg *types.MsgCloseLease) (*types.MsgCloseLeaseResponse, error) {
	if err := msg.ValidateBasic(); err != nil {
		return nil, err
	}
	lease, err := m.getLease(ctx, msg.LeaseId)
	if err != nil {
		return nil, err
	}
	var reason string
	switch msg.Sender {
	case lease.Buyer:
		reason = ReasonBuyer
	case lease.Provider:
		reason = ReasonProvider
	default:
		return nil, errorsmod.Wrap(types.ErrUnauthorized, "only the lease's buyer or provider can close it")
	}
	if lease.Status != types.LEASE_STATUS_ACTIVE {
		return nil, errorsmod.Wrapf(types.ErrLeaseNotActive, "lease %d is %s", lease.Id, lease.Status)
	}
	refunded, err := m.closeLease(ctx, &lease, msg.Sender, reason, nil)
	if err != nil {
		return nil, err
	}
	return &types.MsgCloseLeaseResponse{Refunded: refunded}, nil
}

// OpenDispute freezes everything still in escrow for the lease: pending
// (cleared, unpaid) and remaining. Only the buyer may, while something is
// left to freeze: during the lease, or after it while payouts are pending.
func (m msgServer) OpenDispute(ctx context.Context, msg *types.MsgOpenDispute) (*types.MsgOpenDisputeResponse, error) {
	if err := msg.ValidateBasic(); err != nil {
		return nil, err
	}
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	lease, err := m.getLease(ctx, msg.LeaseId)
	if err != nil {
		return nil, err
	}
	if msg.Buyer != lease.Buyer {
		return nil, errorsmod.Wrap(types.ErrUnauthorized, "only the lease's buyer can dispute it")
	}
	if lease.Status == types.LEASE_STATUS_DISPUTED {
		return nil, errorsmod.Wrapf(types.ErrLeaseNotActive, "lease %d is already disputed", lease.Id)
	}
	if err := m.payOverdue(ctx, &lease, sdkCtx.BlockHeight()); err != nil {
		return nil, err
	}
	toFreeze := lease.Pending.Add(lease.Remaining)
	if !toFreeze.IsPositive() {
		return nil, errorsmod.Wrapf(types.ErrDisputeWindow, "lease %d has nothing in escrow", lease.Id)
	}
	// Mark the cleared-but-unpaid epochs frozen, so their payouts skip.
	var frozenKeys []collections.Pair[uint64, uint64]
	err = m.Epochs.Walk(ctx, collections.NewPrefixedPairRange[uint64, uint64](lease.Id), func(k collections.Pair[uint64, uint64], r types.EpochRecord) (bool, error) {
		if r.Status == types.EPOCH_STATUS_CLEARED {
			frozenKeys = append(frozenKeys, k)
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	for _, k := range frozenKeys {
		r, err := m.Epochs.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		r.Status = types.EPOCH_STATUS_FROZEN
		if err := m.Epochs.Set(ctx, k, r); err != nil {
			return nil, err
		}
	}
	lease.Frozen = lease.Frozen.Add(toFreeze)
	lease.Pending = math.ZeroInt()
	lease.Remaining = math.ZeroInt()
	lease.Status = types.LEASE_STATUS_DISPUTED
	lease.DisputedHeight = sdkCtx.BlockHeight()
	if err := m.Leases.Set(ctx, lease.Id, lease); err != nil {
		return nil, err
	}
	err = sdkCtx.EventManager().EmitTypedEvent(&types.EventDisputeOpened{
		LeaseId: lease.Id, Buyer: msg.Buyer, Frozen: toFreeze, Reason: msg.Reason,
	})
	if err != nil {
		return nil, err
	}
	return &types.MsgOpenDisputeResponse{Frozen: toFreeze}, nil
}

// ResolveDispute splits the frozen escrow: buyer_bps/10000 to the buyer
// (rounded down), the rest to the provider less the marketplace fee. It is
// the arbiter's only power: it cannot touch any other lease or account.
func (m msgServer) ResolveDispute(ctx context.Context, msg *types.MsgResolveDispute) (*types.MsgResolveDisputeResponse, error) {
	if err := msg.ValidateBasic(); err != nil {
		return nil, err
	}
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	params, err := m.Params.Get(ctx)
	if err != nil {
		return nil, err
	}
	// Until genesis or governance names an arbiter, the params authority
	// (governance) is it: a dispute must never freeze escrow for good.
	arbiter := params.Arbiter
	if arbiter == "" {
		arbiter = m.authority
	}
	if msg.Arbiter != arbiter {
		return nil, types.ErrNotArbiter
	}
	lease, err := m.getLease(ctx, msg.LeaseId)
	if err != nil {
		return nil, err
	}
	if lease.Status != types.LEASE_STATUS_DISPUTED {
		return nil, errorsmod.Wrapf(types.ErrNotDisputed, "lease %d is %s", lease.Id, lease.Status)
	}
	frozen := lease.Frozen
	toBuyer := frozen.MulRaw(int64(msg.BuyerBps)).QuoRaw(10_000)
	toProvider := frozen.Sub(toBuyer)
	fee := toProvider.MulRaw(int64(lease.FeeBps)).QuoRaw(10_000)
	net := toProvider.Sub(fee)
	if err := m.pay(ctx, lease.Denom, lease.Buyer, toBuyer); err != nil {
		return nil, err
	}
	if err := m.pay(ctx, lease.Denom, lease.Provider, net); err != nil {
		return nil, err
	}
	if err := m.payFee(ctx, lease.Denom, fee); err != nil {
		return nil, err
	}
	lease.Frozen = math.ZeroInt()
	lease.Refunded = lease.Refunded.Add(toBuyer)
	lease.Paid = lease.Paid.Add(net)
	lease.Fees = lease.Fees.Add(fee)
	lease.Status = types.LEASE_STATUS_CLOSED
	if lease.ClosedHeight == 0 {
		lease.ClosedHeight = sdkCtx.BlockHeight()
	}
	lease.CloseReason = ReasonDisputeResolved
	if err := m.Leases.Set(ctx, lease.Id, lease); err != nil {
		return nil, err
	}
	err = sdkCtx.EventManager().EmitTypedEvent(&types.EventDisputeResolved{
		LeaseId: lease.Id, Arbiter: msg.Arbiter, BuyerBps: msg.BuyerBps, ToBuyer: toBuyer, ToProvider: net, Fee: fee, Resolution: msg.Resolution,
	})
	if err != nil {
		return nil, err
	}
	return &types.MsgResolveDisputeResponse{ToBuyer: toBuyer, ToProvider: net}, nil
}

// UpdateParams replaces the params. Live leases keep the terms they copied
// at creation.
func (m msgServer) UpdateParams(ctx context.Context, msg *types.MsgUpdateParams) (*types.MsgUpdateParamsResponse, error) {
	if msg.Authority != m.authority {
		return nil, errorsmod.Wrapf(types.ErrInvalidAuthority, "expected %s, got %s", m.authority, msg.Authority)
	}
	if err := msg.Params.Validate(); err != nil {
		return nil, err
	}
	if err := m.Params.Set(ctx, msg.Params); err != nil {
		return nil, err
	}
	if err := sdk.UnwrapSDKContext(ctx).EventManager().EmitTypedEvent(&types.EventParamsUpdated{Authority: msg.Authority}); err != nil {
		return nil, err
	}
	return &types.MsgUpdateParamsResponse{}, nil
}

// getLease loads a lease or returns ErrLeaseNotFound.
func (k Keeper) getLease(ctx context.Context, id uint64) (types.Lease, error) {
	l, err := k.Leases.Get(ctx, id)
	if errors.Is(err, collections.ErrNotFound) {
		return l, errorsmod.Wrapf(types.ErrLeaseNotFound, "lease %d", id)
	}
	return l, err
}

// closeLease refunds the remaining escrow and marks the lease closed. An
// epoch whose proof already landed and waits for its verdict is not the
// buyer's to take back: its price stays in remaining until the judging
// block clears it (for the provider) or rejects it (for the buyer).
// Otherwise a buyer watching for proofs could close each lease in the
// gap and be refunded for work done. The refund goes into sends (the end
// of block's batch), or to the buyer at once when sends is nil.
func (k Keeper) closeLease(ctx context.Context, lease *types.Lease, by, reason string, sends *payBatch) (math.Int, error) {
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	judging, err := k.pendingCount(ctx, lease.Id)
	if err != nil {
		return math.Int{}, err
	}
	held := lease.PricePerEpoch.MulRaw(judging)
	if held.GT(lease.Remaining) {
		return math.Int{}, fmt.Errorf("lease %d: %d epochs being judged hold %s, more than the %s remaining", lease.Id, judging, held, lease.Remaining)
	}
	refund := lease.Remaining.Sub(held)
	if err := k.refund(ctx, sends, lease.Denom, lease.Buyer, refund); err != nil {
		return math.Int{}, err
	}
	lease.Refunded = lease.Refunded.Add(refund)
	lease.Remaining = held
	lease.Status = types.LEASE_STATUS_CLOSED
	lease.ClosedHeight = sdkCtx.BlockHeight()
	lease.CloseReason = reason
	if err := k.Leases.Set(ctx, lease.Id, *lease); err != nil {
		return math.Int{}, err
	}
	sdkCtx.EventManager().EmitEvent(leaseClosedEvent(&types.EventLeaseClosed{LeaseId: lease.Id, By: by, Reason: reason, Refunded: refund}))
	return refund, nil
}

// pay sends amount of denom from escrow to addr (nothing when zero).
func (k Keeper) pay(ctx context.Context, denom, addr string, amount math.Int) error {
	if !amount.IsPositive() {
		return nil
	}
	to, err := sdk.AccAddressFromBech32(addr)
	if err != nil {
		return err
	}
	return k.bank.SendCoinsFromModuleToAccount(ctx, types.ModuleName, to, coins(denom, amount))
}

// payFee sends the marketplace fee to the fee collector.
func (k Keeper) payFee(ctx context.Context, denom string, fee math.Int) error {
	if !fee.IsPositive() {
		return nil
	}
	return k.bank.SendCoinsFromModuleToModule(ctx, types.ModuleName, k.feeCollector, coins(denom, fee))
}

// scheduleDeadline files epoch e's proof deadline in the due index.
func (k Keeper) scheduleDeadline(ctx context.Context, lease types.Lease, e uint64) error {
	_, _, deadline := epochBounds(lease, e)
	return k.DeadlineDue.Set(ctx, collections.Join3(deadline, lease.Id, e))
}
