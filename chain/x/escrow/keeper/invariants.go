package keeper

import (
	"fmt"
	"slices"

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
	if len(problems) > 0 {
		return fmt.Sprintf("%d problem(s): %v", len(problems), problems), true
	}
	return "module balance equals escrow held", false
}
