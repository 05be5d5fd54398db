package keeper_test

import (
	"testing"

	"cosmossdk.io/math"

	"github.com/highway-compute/highway/chain/x/escrow/types"
)

// TestEndBlockBudgetCarriesWorkInDueOrder: when more settlements fall due
// in one block than its budget allows, that block does exactly the budget's
// worth, oldest first (lease order within a height), and the rest runs in
// the following blocks; every lease ends with the outcome it would have had
// at once (its missed epoch refunded, to the micro-unit), and the escrow
// invariant holds after every block.
func TestEndBlockBudgetCarriesWorkInDueOrder(t *testing.T) {
	const n = 2*types.EndBlockBudget + 100
	f := newFixture(t)
	f.fund(f.buyer, 1_000_000_000)
	var leases []types.Lease
	for range n {
		leases = append(leases, f.createLeaseFast(t, 1000, 10))
	}
	for f.ctx.BlockHeight() < epochSettle(leases[0], 0) {
		f.endBlockFast(t)
	}
	settled := func() (count int, prefix bool) {
		prefix = true
		for i, l := range leases {
			if got := f.lease(l.Id); got.EpochsMissed == 1 {
				count++
				prefix = prefix && count == i+1
			}
		}
		return count, prefix
	}
	for block, want := range []int{types.EndBlockBudget, 2 * types.EndBlockBudget, n} {
		f.endBlockFast(t)
		f.checkInvariant()
		got, inOrder := settled()
		if got != want || !inOrder {
			t.Fatalf("after block %d of the burst: %d settled (in lease order: %v), want %d", block+1, got, inOrder, want)
		}
	}
	for _, l := range leases {
		got := f.lease(l.Id)
		if got.Status != types.LEASE_STATUS_ACTIVE || !got.Refunded.Equal(math.NewInt(1000)) || got.NextEpoch != 1 {
			t.Fatalf("lease %d after the burst: %s", l.Id, got.String())
		}
	}
}
