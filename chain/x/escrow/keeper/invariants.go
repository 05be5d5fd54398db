package keeper

import (
	"fmt"
	"slices"

	"cosmossdk.io/collections"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/chain/x/escrow/types"
)

// RegisterInvariants registers the escrow invariants.
func RegisterInvariants(ir sdk.InvariantRegistry, k Keeper) { //nolint:staticcheck // x/crisis is deprecated, but a registered invariant is still how the SDK's simulator and operators check module state
	ir.RegisterRoute(types.ModuleName, "module-balance", ModuleBalanceInvariant(k))
}

// ModuleBalanceInvariant: the module account holds exactly the sum over
// leases of remaining + pending + frozen, per denom, and every lease's
// books balance (escrowed = held + paid + fees + refunded). Direct bank
// sends to the module account are blocked, so equality (not ≥) holds.
func ModuleBalanceInvariant(k Keeper) sdk.Invariant { //nolint:staticcheck // see RegisterInvariants
	return func(ctx sdk.Context) (string, bool) {
		msg, broken := k.CheckInvariant(ctx)
		return sdk.FormatInvariant(types.ModuleName, "module-balance", msg), broken //nolint:staticcheck // see RegisterInvariants
	}
}

// CheckInvariant returns a description and whether the invariant is broken.
func (k Keeper) CheckInvariant(ctx sdk.Context) (string, bool) {
	var problems []string
	totals, err := k.EscrowTotals(ctx, func(l types.Lease) {
		if err := l.CheckBooks(); err != nil {
			problems = append(problems, err.Error())
		}
	})
	if err != nil {
		return "totals: " + err.Error(), true
	}
	denoms := make([]string, 0, len(totals))
	for d := range totals {
		denoms = append(denoms, d)
	}
	params, err := k.Params.Get(ctx)
	if err == nil && totals[params.Denom] == nil {
		denoms = append(denoms, params.Denom)
	}
	slices.Sort(denoms)
	for _, d := range denoms {
		held := totals[d].Held()
		bal := k.moduleBalance(ctx, d)
		if !bal.Equal(held) {
			problems = append(problems, fmt.Sprintf("denom %s: module balance %s ≠ remaining+pending+frozen %s", d, bal, held))
		}
	}
	problems = append(problems, k.checkPending(ctx)...)
	if len(problems) > 0 {
		return fmt.Sprintf("%d problem(s): %v", len(problems), problems), true
	}
	return "module balance equals escrow held", false
}

// checkPending: every proof awaiting its verdict belongs to a lease whose
// remaining escrow still holds its price (unless a dispute froze it all),
// and is filed in the judging index.
func (k Keeper) checkPending(ctx sdk.Context) []string {
	var problems []string
	counts := map[uint64]int64{}
	var ids []uint64
	err := k.PendingProofs.Walk(ctx, nil, func(key collections.Pair[uint64, uint64], p types.PendingProof) (bool, error) {
		if counts[key.K1()] == 0 {
			ids = append(ids, key.K1())
		}
		counts[key.K1()]++
		due, err := k.JudgeDue.Has(ctx, collections.Join3(p.JudgeHeight, p.LeaseId, p.Epoch))
		if err != nil {
			return true, err
		}
		if !due || p.JudgeHeight < ctx.BlockHeight() {
			problems = append(problems, fmt.Sprintf("lease %d epoch %d: pending proof not due at a future height (%d)", p.LeaseId, p.Epoch, p.JudgeHeight))
		}
		return false, nil
	})
	if err != nil {
		return append(problems, "pending proofs: "+err.Error())
	}
	// The keys-only index a close counts from lists exactly these proofs.
	indexed := map[uint64]int64{}
	err = k.Judging.Walk(ctx, nil, func(key collections.Pair[uint64, uint64]) (bool, error) {
		indexed[key.K1()]++
		has, err := k.PendingProofs.Has(ctx, key)
		if err == nil && !has {
			problems = append(problems, fmt.Sprintf("lease %d epoch %d: indexed as judging with no pending proof", key.K1(), key.K2()))
		}
		return err != nil, err
	})
	if err != nil {
		return append(problems, "judging index: "+err.Error())
	}
	for _, id := range ids {
		if indexed[id] != counts[id] {
			problems = append(problems, fmt.Sprintf("lease %d: %d pending proofs, %d in the judging index", id, counts[id], indexed[id]))
		}
	}
	for _, id := range ids {
		l, err := k.getLease(ctx, id)
		if err != nil {
			problems = append(problems, fmt.Sprintf("pending proof for lease %d: %v", id, err))
			continue
		}
		if need := l.PricePerEpoch.MulRaw(counts[id]); l.DisputedHeight == 0 && l.Remaining.LT(need) {
			problems = append(problems, fmt.Sprintf("lease %d: %d epochs being judged need %s, remaining holds %s", id, counts[id], need, l.Remaining))
		}
	}
	return problems
}
