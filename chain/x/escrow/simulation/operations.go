package simulation

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync/atomic"

	errorsmod "cosmossdk.io/errors"
	"cosmossdk.io/math"

	"github.com/cosmos/cosmos-sdk/baseapp"
	"github.com/cosmos/cosmos-sdk/client"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	simtestutil "github.com/cosmos/cosmos-sdk/testutil/sims"
	sdk "github.com/cosmos/cosmos-sdk/types"
	simtypes "github.com/cosmos/cosmos-sdk/types/simulation"
	"github.com/cosmos/cosmos-sdk/x/simulation"

	"github.com/highway-compute/highway/chain/x/escrow/keeper"
	"github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/poc"
)

// Operation weights: proofs dominate, as on a live network.
const (
	WeightCreateLease     = 30
	WeightSubmitProof     = 60
	WeightFabricatedProof = 8
	WeightMalformedProof  = 3
	WeightLateProof       = 6
	WeightResubmitProof   = 6
	WeightCloseLease      = 6
	WeightExtendLease     = 6
	WeightOpenDispute     = 5
	WeightResolveDispute  = 8
	WeightBadResolve      = 3
)

// deps is what the operations need from the app.
type deps struct {
	k        keeper.Keeper
	ak       types.AccountKeeper
	bk       types.BankKeeper
	txConfig client.TxConfig
}

// WeightedOperations returns the escrow operations.
func WeightedOperations(txConfig client.TxConfig, k keeper.Keeper, ak types.AccountKeeper, bk types.BankKeeper) simulation.WeightedOperations {
	d := deps{k: k, ak: ak, bk: bk, txConfig: txConfig}
	return simulation.WeightedOperations{
		simulation.NewWeightedOperation(WeightCreateLease, d.createLease),
		simulation.NewWeightedOperation(WeightSubmitProof, d.submitProof(proofHonest)),
		simulation.NewWeightedOperation(WeightFabricatedProof, d.submitProof(proofFabricated)),
		simulation.NewWeightedOperation(WeightMalformedProof, d.submitProof(proofMalformed)),
		simulation.NewWeightedOperation(WeightLateProof, d.submitProof(proofLate)),
		simulation.NewWeightedOperation(WeightResubmitProof, d.submitProof(proofResubmit)),
		simulation.NewWeightedOperation(WeightCloseLease, d.closeLease),
		simulation.NewWeightedOperation(WeightExtendLease, d.extendLease),
		simulation.NewWeightedOperation(WeightOpenDispute, d.openDispute),
		simulation.NewWeightedOperation(WeightResolveDispute, d.resolveDispute(false)),
		simulation.NewWeightedOperation(WeightBadResolve, d.resolveDispute(true)),
	}
}

var msgCreate = sdk.MsgTypeURL(&types.MsgCreateLease{})

// deliver signs msg for from and runs it through the app. wantErr, when
// set, is the registered error the message must fail with; a message that
// should fail but succeeds (or fails otherwise) aborts the simulation.
func (d deps) deliver(r *rand.Rand, app *baseapp.BaseApp, ctx sdk.Context, chainID string, from simtypes.Account, msg sdk.Msg, wantErr *errorsmod.Error) (simtypes.OperationMsg, []simtypes.FutureOperation, error) {
	acc := d.ak.GetAccount(ctx, from.Address)
	if acc == nil {
		return simtypes.NoOpMsg(types.ModuleName, sdk.MsgTypeURL(msg), "account not on chain"), nil, nil
	}
	tx, err := simtestutil.GenSignedMockTx(r, d.txConfig, []sdk.Msg{msg}, sdk.NewCoins(), 10_000_000, chainID,
		[]uint64{acc.GetAccountNumber()}, []uint64{acc.GetSequence()}, from.PrivKey)
	if err != nil {
		return simtypes.NoOpMsg(types.ModuleName, sdk.MsgTypeURL(msg), "sign"), nil, err
	}
	_, _, err = app.SimDeliver(d.txConfig.TxEncoder(), tx)
	switch {
	case wantErr == nil && err != nil:
		return simtypes.NoOpMsg(types.ModuleName, sdk.MsgTypeURL(msg), err.Error()), nil, fmt.Errorf("%s: %w", sdk.MsgTypeURL(msg), err)
	case wantErr != nil && err == nil:
		return simtypes.NoOpMsg(types.ModuleName, sdk.MsgTypeURL(msg), "accepted"), nil, fmt.Errorf("%s was accepted but must fail with %w", sdk.MsgTypeURL(msg), wantErr)
	case wantErr != nil && !errors.Is(err, wantErr):
		return simtypes.NoOpMsg(types.ModuleName, sdk.MsgTypeURL(msg), err.Error()), nil, fmt.Errorf("%s failed with %w, want %w", sdk.MsgTypeURL(msg), err, wantErr)
	case wantErr != nil:
		// The expected rejection is the outcome under test, not a failure.
		return simtypes.NewOperationMsg(msg, false, "rejected as expected: "+wantErr.Error()), nil, nil //nolint:nilerr // see above
	}
	return simtypes.NewOperationMsg(msg, true, ""), nil, nil
}

func (d deps) createLease(r *rand.Rand, app *baseapp.BaseApp, ctx sdk.Context, accs []simtypes.Account, chainID string) (simtypes.OperationMsg, []simtypes.FutureOperation, error) {
	params, err := d.k.Params.Get(ctx)
	if err != nil {
		return simtypes.NoOpMsg(types.ModuleName, msgCreate, "params"), nil, err
	}
	buyer, bi := simtypes.RandomAcc(r, accs)
	provider, pi := simtypes.RandomAcc(r, accs)
	if bi == pi {
		return simtypes.NoOpMsg(types.ModuleName, msgCreate, "same account"), nil, nil
	}
	class := params.ClassRates[r.Intn(len(params.ClassRates))].Class
	price := math.NewInt(1 + r.Int63n(50_000))
	epochs := uint64(1 + r.Intn(int(params.MaxEpochsPerLease)))
	q := types.Quote{
		Provider: provider.Address.String(), Buyer: buyer.Address.String(), GpuClass: class, Gpus: uint32(1 + r.Intn(4)),
		PricePerEpoch: price, Epochs: epochs, ExpiresAt: ctx.BlockTime().Unix() + 600, Nonce: r.Uint64(),
	}
	key, ok := provider.PrivKey.(*secp256k1.PrivKey)
	if !ok {
		return simtypes.NoOpMsg(types.ModuleName, msgCreate, "provider key type"), nil, nil
	}
	q, err = types.SignQuote(chainID, q, key)
	if err != nil {
		return simtypes.NoOpMsg(types.ModuleName, msgCreate, "sign quote"), nil, err
	}
	var want *errorsmod.Error
	switch r.Intn(10) {
	case 0: // tamper after signing
		q.PricePerEpoch = q.PricePerEpoch.AddRaw(1)
		want = types.ErrQuoteSignature
	case 1: // expired
		q.ExpiresAt = ctx.BlockTime().Unix() - 1
		q, _ = types.SignQuote(chainID, q, key)
		want = types.ErrQuoteExpired
	}
	total := q.PricePerEpoch.MulRaw(int64(epochs))
	if want == nil && d.bk.SpendableCoins(ctx, buyer.Address).AmountOf(params.Denom).LT(total) {
		want = types.ErrInsufficientFunds
	}
	return d.deliver(r, app, ctx, chainID, buyer, &types.MsgCreateLease{Buyer: buyer.Address.String(), Quote: q}, want)
}

type proofKind int

const (
	proofHonest proofKind = iota
	proofFabricated
	proofMalformed
	proofLate
	proofResubmit
)

// leasesWhere lists the leases matching keep (the simulation keeps them
// few enough to walk).
func (d deps) leasesWhere(ctx context.Context, keep func(types.Lease) bool) ([]types.Lease, error) {
	var out []types.Lease
	err := d.k.Leases.Walk(ctx, nil, func(_ uint64, l types.Lease) (bool, error) {
		if keep(l) {
			out = append(out, l)
		}
		return false, nil
	})
	return out, err
}

// activeLeases lists active leases.
func (d deps) activeLeases(ctx context.Context) ([]types.Lease, error) {
	return d.leasesWhere(ctx, func(l types.Lease) bool { return l.Status == types.LEASE_STATUS_ACTIVE })
}

// hasProof reports whether the epoch already had its one proof (judged or
// waiting for its verdict).
func (d deps) hasProof(ctx context.Context, id, e uint64) bool {
	settled, _ := d.k.Epochs.Has(ctx, joinEpoch(id, e))
	pending, _ := d.k.PendingProofs.Has(ctx, joinEpoch(id, e))
	return settled || pending
}

func (d deps) submitProof(kind proofKind) simtypes.Operation {
	return func(r *rand.Rand, app *baseapp.BaseApp, ctx sdk.Context, accs []simtypes.Account, chainID string) (simtypes.OperationMsg, []simtypes.FutureOperation, error) {
		name := sdk.MsgTypeURL(&types.MsgSubmitProof{})
		leases, err := d.activeLeases(ctx)
		if err != nil || len(leases) == 0 {
			return simtypes.NoOpMsg(types.ModuleName, name, "no active lease"), nil, err
		}
		l := leases[r.Intn(len(leases))]
		provider, ok := simtypes.FindAccount(accs, sdk.MustAccAddressFromBech32(l.Provider))
		if !ok {
			return simtypes.NoOpMsg(types.ModuleName, name, "provider not a sim account"), nil, nil
		}
		h := ctx.BlockHeight()
		if h <= l.StartHeight {
			return simtypes.NoOpMsg(types.ModuleName, name, "lease starts this block"), nil, nil
		}
		// The current epoch: the one whose blocks contain this one.
		cur := uint64(h-l.StartHeight-1) / l.EpochBlocks
		if kind == proofLate {
			// An epoch whose last block is behind this one.
			if cur < 1 || cur > l.EpochsTotal {
				return simtypes.NoOpMsg(types.ModuleName, name, "no epoch past its window"), nil, nil
			}
			msg := &types.MsgSubmitProof{Provider: l.Provider, LeaseId: l.Id, Epoch: uint64(r.Int63n(int64(cur))), Proof: []byte{1}}
			return d.deliver(r, app, ctx, chainID, provider, msg, types.ErrProofWindow)
		}
		if cur >= l.EpochsTotal {
			return simtypes.NoOpMsg(types.ModuleName, name, "no open epoch"), nil, nil
		}
		task, err := keeper.NewQueryServerImpl(d.k).ProofTask(ctx, &types.QueryProofTaskRequest{LeaseId: l.Id, Epoch: cur})
		if err != nil {
			// The epoch's seed block is not committed yet: nothing to do.
			return simtypes.NoOpMsg(types.ModuleName, name, "no task yet"), nil, nil //nolint:nilerr // see above
		}
		closed := task.WindowCloseMs != 0 && ctx.BlockTime().UnixMilli() > task.WindowCloseMs
		proven := d.hasProof(ctx, l.Id, cur)
		msg := &types.MsgSubmitProof{Provider: l.Provider, LeaseId: l.Id, Epoch: cur}
		switch {
		case kind == proofResubmit && !proven:
			return simtypes.NoOpMsg(types.ModuleName, name, "nothing to resubmit"), nil, nil
		case kind == proofResubmit || closed:
			// A second try for an epoch (or any try once its window has
			// closed) is refused and changes nothing.
			msg.Proof = []byte{1}
			want := types.ErrDuplicateProof
			if closed {
				want = types.ErrProofWindow
			}
			return d.deliver(r, app, ctx, chainID, provider, msg, want)
		case proven:
			return simtypes.NoOpMsg(types.ModuleName, name, "already proven"), nil, nil
		}
		pp := task.Poc.ToPoC()
		var seed poc.Seed
		copy(seed[:], task.Seed)
		target := poc.Target{Difficulty: task.Difficulty, Required: task.Required}
		var proof poc.Proof
		switch kind {
		case proofMalformed:
			msg.Proof = make([]byte, 1+r.Intn(16))
			r.Read(msg.Proof)
		case proofFabricated:
			// Claim Required nonces that are all invalid: the sampled
			// recomputation must refuse it whatever it samples. (How often
			// a partly fabricated proof slips through is measured on the
			// keeper with real windows and many seeds; here the state
			// machine is under test.)
			model, err := poc.NewModel(pp, seed)
			if err != nil {
				return simtypes.NoOpMsg(types.ModuleName, name, "model"), nil, err
			}
			proof.Version = pp.Version
			for n := uint64(0); uint64(len(proof.Nonces)) < task.Required; n++ {
				if !target.Valid(model.Compute(n)) {
					proof.Nonces = append(proof.Nonces, n)
				}
			}
		default:
			proof, err = poc.Prove(context.Background(), poc.CPUBackend{Workers: 1}, pp, seed, target,
				poc.ProveOptions{Limit: task.Difficulty * (pp.ExpectedValid + 64)})
			if err != nil {
				return simtypes.NoOpMsg(types.ModuleName, name, "prove"), nil, err
			}
		}
		if msg.Proof == nil {
			if msg.Proof, err = proof.MarshalBinary(); err != nil {
				return simtypes.NoOpMsg(types.ModuleName, name, "encode"), nil, err
			}
		}
		op, future, err := d.deliver(r, app, ctx, chainID, provider, msg, nil)
		if err != nil {
			return op, future, err
		}
		// The verdict: at once for a proof that can never clear (malformed,
		// too few nonces), else in its judging block; then check it.
		immediate := kind == proofMalformed || uint64(len(proof.Nonces)) < task.Required
		wantCleared := kind == proofHonest && !immediate
		if immediate {
			return op, future, d.checkVerdict(ctx, l.Id, cur, false)
		}
		pending, err := d.k.PendingProofs.Get(ctx, joinEpoch(l.Id, cur))
		if err != nil {
			return op, future, fmt.Errorf("lease %d epoch %d: accepted proof is not pending: %w", l.Id, cur, err)
		}
		check := func(_ *rand.Rand, _ *baseapp.BaseApp, ctx sdk.Context, _ []simtypes.Account, _ string) (simtypes.OperationMsg, []simtypes.FutureOperation, error) {
			return simtypes.NoOpMsg(types.ModuleName, name, "verdict checked"), nil, d.checkVerdict(ctx, l.Id, cur, wantCleared)
		}
		return op, append(future, simtypes.FutureOperation{BlockHeight: int(pending.JudgeHeight) + 1, Op: check}), nil
	}
}

// checkVerdict fails the simulation unless the epoch's verdict is the one
// its proof deserved.
func (d deps) checkVerdict(ctx context.Context, id, e uint64, cleared bool) error {
	rec, err := d.k.Epochs.Get(ctx, joinEpoch(id, e))
	if err != nil {
		return fmt.Errorf("lease %d epoch %d: no verdict: %w", id, e, err)
	}
	if got := rec.Status != types.EPOCH_STATUS_MISSED; got != cleared {
		return fmt.Errorf("lease %d epoch %d: verdict %s (%s), want cleared=%v", id, e, rec.Status, rec.Reason, cleared)
	}
	return nil
}

func (d deps) closeLease(r *rand.Rand, app *baseapp.BaseApp, ctx sdk.Context, accs []simtypes.Account, chainID string) (simtypes.OperationMsg, []simtypes.FutureOperation, error) {
	name := sdk.MsgTypeURL(&types.MsgCloseLease{})
	leases, err := d.activeLeases(ctx)
	if err != nil || len(leases) == 0 {
		return simtypes.NoOpMsg(types.ModuleName, name, "no active lease"), nil, err
	}
	l := leases[r.Intn(len(leases))]
	who := l.Buyer
	if r.Intn(2) == 0 {
		who = l.Provider
	}
	var want *errorsmod.Error
	if r.Intn(8) == 0 { // a stranger tries
		stranger, _ := simtypes.RandomAcc(r, accs)
		if s := stranger.Address.String(); s != l.Buyer && s != l.Provider {
			who, want = s, types.ErrUnauthorized
		}
	}
	acc, ok := simtypes.FindAccount(accs, sdk.MustAccAddressFromBech32(who))
	if !ok {
		return simtypes.NoOpMsg(types.ModuleName, name, "signer not a sim account"), nil, nil
	}
	return d.deliver(r, app, ctx, chainID, acc, &types.MsgCloseLease{Sender: who, LeaseId: l.Id}, want)
}

// extendLease extends a random active lease under its provider's signed
// extension quote, and predicts the outcome: a stranger is refused, so is
// an extension after the last epoch's end or beyond the unsettled-epoch
// limit, a quote altered after signing, and one the buyer cannot fund.
func (d deps) extendLease(r *rand.Rand, app *baseapp.BaseApp, ctx sdk.Context, accs []simtypes.Account, chainID string) (simtypes.OperationMsg, []simtypes.FutureOperation, error) {
	name := sdk.MsgTypeURL(&types.MsgExtendLease{})
	leases, err := d.activeLeases(ctx)
	if err != nil || len(leases) == 0 {
		return simtypes.NoOpMsg(types.ModuleName, name, "no active lease"), nil, err
	}
	params, err := d.k.Params.Get(ctx)
	if err != nil {
		return simtypes.NoOpMsg(types.ModuleName, name, "params"), nil, err
	}
	l := leases[r.Intn(len(leases))]
	provider, ok := simtypes.FindAccount(accs, sdk.MustAccAddressFromBech32(l.Provider))
	key, isSecp := provider.PrivKey.(*secp256k1.PrivKey)
	if !ok || !isSecp {
		return simtypes.NoOpMsg(types.ModuleName, name, "provider not a sim account"), nil, nil
	}
	epochs := uint64(1 + r.Intn(4))
	q, err := types.SignQuote(chainID, types.Quote{
		Provider: l.Provider, Buyer: l.Buyer, GpuClass: l.GpuClass, Gpus: l.Gpus, PricePerEpoch: l.PricePerEpoch,
		Epochs: epochs, ExpiresAt: ctx.BlockTime().Unix() + 600, Nonce: r.Uint64(), ExtendsLease: l.Id,
	}, key)
	if err != nil {
		return simtypes.NoOpMsg(types.ModuleName, name, "sign quote"), nil, err
	}
	signer := l.Buyer
	var want *errorsmod.Error
	lastEnd := l.StartHeight + int64(l.EpochsTotal*l.EpochBlocks)
	// The keeper's order of checks decides which error a message with
	// several faults gets.
	if r.Intn(8) == 0 {
		stranger, _ := simtypes.RandomAcc(r, accs)
		if s := stranger.Address.String(); s != l.Buyer {
			signer, want = s, types.ErrUnauthorized
		}
	}
	if want == nil {
		switch {
		case ctx.BlockHeight() >= lastEnd, l.EpochsTotal+epochs-l.NextEpoch > params.MaxEpochsPerLease:
			want = types.ErrExtension
		case r.Intn(10) == 0:
			// Altered after signing. The nonce, not the epochs: more
			// epochs could cross the unsettled limit, which the keeper
			// checks before the signature.
			q.Nonce++
			want = types.ErrQuoteSignature
		case d.bk.SpendableCoins(ctx, sdk.MustAccAddressFromBech32(l.Buyer)).AmountOf(l.Denom).LT(l.PricePerEpoch.MulRaw(int64(epochs))):
			want = types.ErrInsufficientFunds
		}
	}
	acc, ok := simtypes.FindAccount(accs, sdk.MustAccAddressFromBech32(signer))
	if !ok {
		return simtypes.NoOpMsg(types.ModuleName, name, "signer not a sim account"), nil, nil
	}
	op, fut, err := d.deliver(r, app, ctx, chainID, acc, &types.MsgExtendLease{Buyer: signer, LeaseId: l.Id, Quote: q}, want)
	if err == nil && want == nil {
		extended.Add(1)
	}
	return op, fut, err
}

// extended counts the extensions the operations delivered, so a test can
// tell that the simulation exercised them.
var extended atomic.Int64

// Extended returns how many extensions the operations have delivered in
// this process.
func Extended() int64 { return extended.Load() }

func (d deps) openDispute(r *rand.Rand, app *baseapp.BaseApp, ctx sdk.Context, accs []simtypes.Account, chainID string) (simtypes.OperationMsg, []simtypes.FutureOperation, error) {
	name := sdk.MsgTypeURL(&types.MsgOpenDispute{})
	cands, err := d.leasesWhere(ctx, func(l types.Lease) bool {
		return l.Status != types.LEASE_STATUS_DISPUTED && l.Remaining.Add(l.Pending).IsPositive()
	})
	if err != nil || len(cands) == 0 {
		return simtypes.NoOpMsg(types.ModuleName, name, "nothing to dispute"), nil, err
	}
	l := cands[r.Intn(len(cands))]
	buyer, ok := simtypes.FindAccount(accs, sdk.MustAccAddressFromBech32(l.Buyer))
	if !ok {
		return simtypes.NoOpMsg(types.ModuleName, name, "buyer not a sim account"), nil, nil
	}
	if r.Intn(6) == 0 { // the provider may not dispute
		prov, ok := simtypes.FindAccount(accs, sdk.MustAccAddressFromBech32(l.Provider))
		if ok {
			return d.deliver(r, app, ctx, chainID, prov, &types.MsgOpenDispute{Buyer: l.Provider, LeaseId: l.Id}, types.ErrUnauthorized)
		}
	}
	return d.deliver(r, app, ctx, chainID, buyer, &types.MsgOpenDispute{Buyer: l.Buyer, LeaseId: l.Id, Reason: "simulated"}, nil)
}

func (d deps) resolveDispute(bad bool) simtypes.Operation {
	return func(r *rand.Rand, app *baseapp.BaseApp, ctx sdk.Context, accs []simtypes.Account, chainID string) (simtypes.OperationMsg, []simtypes.FutureOperation, error) {
		name := sdk.MsgTypeURL(&types.MsgResolveDispute{})
		params, err := d.k.Params.Get(ctx)
		if err != nil {
			return simtypes.NoOpMsg(types.ModuleName, name, "params"), nil, err
		}
		disputed, err := d.leasesWhere(ctx, func(l types.Lease) bool { return l.Status == types.LEASE_STATUS_DISPUTED })
		if err != nil || len(disputed) == 0 {
			return simtypes.NoOpMsg(types.ModuleName, name, "no dispute"), nil, err
		}
		l := disputed[r.Intn(len(disputed))]
		arbiter, ok := simtypes.FindAccount(accs, sdk.MustAccAddressFromBech32(params.Arbiter))
		if !ok {
			return simtypes.NoOpMsg(types.ModuleName, name, "arbiter not a sim account"), nil, nil
		}
		if bad {
			if r.Intn(2) == 0 {
				return d.deliver(r, app, ctx, chainID, arbiter, &types.MsgResolveDispute{Arbiter: params.Arbiter, LeaseId: l.Id, BuyerBps: 10_001}, types.ErrInvalidSplit)
			}
			other, _ := simtypes.RandomAcc(r, accs)
			if other.Address.String() != params.Arbiter {
				return d.deliver(r, app, ctx, chainID, other, &types.MsgResolveDispute{Arbiter: other.Address.String(), LeaseId: l.Id, BuyerBps: 5000}, types.ErrNotArbiter)
			}
		}
		bps := uint32(r.Intn(10_001))
		return d.deliver(r, app, ctx, chainID, arbiter, &types.MsgResolveDispute{Arbiter: params.Arbiter, LeaseId: l.Id, BuyerBps: bps, Resolution: "simulated"}, nil)
	}
}
