package keeper_test

import (
	"testing"

	"cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"
	gogoproto "github.com/cosmos/gogoproto/proto"

	"github.com/highway-compute/highway/chain/x/escrow/types"
)

// TestEndBlockBudgetCarriesWorkInDueOrder: when more settlements fall due
// in one block than its budget allows, that block does exactly the budget's
// worth, oldest first (lease order within a height), and the rest runs in
// the following blocks; every lease ends with the outcome it would have had
// at once (its missed epoch refunded, to the micro-unit), and the escrow
// invariant holds after every block.
func TestEndBlockBudgetCarriesWorkInDueOrder(t *testing.T) {
	const n = 2*types.MaxSettlementsPerBlock + 100
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
	before := f.balance(f.buyer)
	for block, want := range []int{types.MaxSettlementsPerBlock, 2 * types.MaxSettlementsPerBlock, n} {
		f.endBlockFast(t)
		f.checkInvariant()
		got, inOrder := settled()
		if got != want || !inOrder {
			t.Fatalf("after block %d of the burst: %d settled (in lease order: %v), want %d", block+1, got, inOrder, want)
		}
		// The block's refunds reached the buyer within the block.
		eq(t, "buyer refunded so far", f.balance(f.buyer).Sub(before), math.NewInt(int64(want)*1000))
	}
	for _, l := range leases {
		got := f.lease(l.Id)
		if got.Status != types.LEASE_STATUS_ACTIVE || !got.Refunded.Equal(math.NewInt(1000)) || got.NextEpoch != 1 {
			t.Fatalf("lease %d after the burst: %s", l.Id, got.String())
		}
	}
}

// TestPayoutsToOneProviderAreOneSend: the epochs of one provider paid in
// one block reach it in one bank send (and the fees in one), each epoch
// still with its own payout event, to the micro-unit.
func TestPayoutsToOneProviderAreOneSend(t *testing.T) {
	f := newFixture(t)
	var leases []types.Lease
	for range 3 {
		leases = append(leases, f.createLease(1, price, 4))
	}
	f.advanceTo(epochStart(leases[0], 0))
	var judgeAt int64
	for _, l := range leases {
		if err := f.submit(l, 0, f.prove(l, 0)); err != nil {
			t.Fatal(err)
		}
		judgeAt = max(judgeAt, f.pending(l, 0).JudgeHeight)
	}
	f.advanceTo(judgeAt + 1)
	var payAt int64
	for _, l := range leases {
		rec := f.record(l, 0)
		if rec.Status != types.EPOCH_STATUS_CLEARED {
			t.Fatalf("lease %d epoch 0: %+v", l.Id, rec)
		}
		payAt = max(payAt, rec.PayoutHeight)
	}
	// The block at the last payout height pays all three (the earlier
	// ones carried into it, as a backlog would be).
	f.ctx = f.ctx.WithBlockHeight(payAt).WithHeaderHash(blockHash(payAt)).WithEventManager(sdk.NewEventManager())
	if err := f.k.EndBlocker(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.checkInvariant()
	sends, payouts := map[string]int{}, 0
	for _, ev := range f.ctx.EventManager().Events() {
		switch ev.Type {
		case banktypes.EventTypeTransfer:
			for _, a := range ev.Attributes {
				if a.Key == banktypes.AttributeKeyRecipient {
					sends[a.Value]++
				}
			}
		case gogoproto.MessageName(&types.EventPayout{}):
			payouts++
		}
	}
	fee := math.NewInt(price * 250 / 10_000)
	if sends[f.provider.String()] != 1 || payouts != 3 {
		t.Fatalf("%d sends to the provider and %d payout events, want 1 and 3 (sends %v)", sends[f.provider.String()], payouts, sends)
	}
	eq(t, "provider", f.balance(f.provider), math.NewInt(3*price).Sub(fee.MulRaw(3)))
	eq(t, "fee collector", f.feeBalance(), fee.MulRaw(3))
}

// TestRefundsToOneBuyerAreOneSend: the missed epochs of one buyer's
// leases settled in one block are refunded in one bank send, each epoch
// still with its own event, to the micro-unit; a lease that ends in that
// block (its last epoch missed) has its remainder in the same send.
func TestRefundsToOneBuyerAreOneSend(t *testing.T) {
	f := newFixture(t)
	leases := []types.Lease{f.createLease(1, price, 4), f.createLease(1, price, 4), f.createLease(1, price, 1)}
	f.advanceTo(epochStart(leases[0], 0))
	before := f.balance(f.buyer)
	settle := epochSettle(leases[0], 0)
	for _, l := range leases {
		settle = max(settle, epochSettle(l, 0))
	}
	f.ctx = f.ctx.WithBlockHeight(settle).WithHeaderHash(blockHash(settle)).WithEventManager(sdk.NewEventManager())
	if err := f.k.EndBlocker(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.checkInvariant()
	sends, missed, closed := 0, 0, 0
	for _, ev := range f.ctx.EventManager().Events() {
		switch ev.Type {
		case banktypes.EventTypeTransfer:
			for _, a := range ev.Attributes {
				if a.Key == banktypes.AttributeKeyRecipient && a.Value == f.buyer.String() {
					sends++
				}
			}
		case gogoproto.MessageName(&types.EventEpochMissed{}):
			missed++
		case gogoproto.MessageName(&types.EventLeaseClosed{}):
			closed++
		}
	}
	if sends != 1 || missed != 3 || closed != 1 {
		t.Fatalf("%d sends to the buyer, %d missed-epoch and %d lease-closed events, want 1, 3 and 1", sends, missed, closed)
	}
	eq(t, "buyer refunded", f.balance(f.buyer).Sub(before), math.NewInt(3*price))
	if got := f.lease(leases[2].Id); got.Status != types.LEASE_STATUS_CLOSED || !got.Remaining.IsZero() {
		t.Fatalf("the one-epoch lease after its epoch: %s", got.String())
	}
}

// TestDisputePaysPayoutsTheCapsCarried: an epoch whose dispute window has
// closed but whose payout the end-of-block caps have not reached yet is
// the provider's: a dispute opened then pays it first and freezes only
// what was still disputable, exactly as if the payout had run on time;
// the payout's index entry, reached later, pays nothing twice.
func TestDisputePaysPayoutsTheCapsCarried(t *testing.T) {
	f := newFixture(t)
	l := f.createLease(1, price, 4)
	f.advanceTo(epochStart(l, 0))
	if err := f.submit(l, 0, f.prove(l, 0)); err != nil {
		t.Fatal(err)
	}
	rec := f.judged(l, 0)
	// The payout is due, but (as under a backlog) no end-of-block has run
	// it: the dispute comes in a later block first.
	at := rec.PayoutHeight + 2
	f.ctx = f.ctx.WithBlockHeight(at).WithHeaderHash(blockHash(at)).WithEventManager(sdk.NewEventManager())
	if _, err := deliver(f, f.ms.OpenDispute, &types.MsgOpenDispute{Buyer: f.buyer.String(), LeaseId: l.Id, Reason: "late"}); err != nil {
		t.Fatal(err)
	}
	fee := math.NewInt(price * 250 / 10_000)
	eq(t, "provider paid before the freeze", f.balance(f.provider), math.NewInt(price).Sub(fee))
	got := f.lease(l.Id)
	eq(t, "frozen", got.Frozen, math.NewInt(3*price))
	eq(t, "pending", got.Pending, math.ZeroInt())
	if r := f.record(l, 0); r.Status != types.EPOCH_STATUS_PAID {
		t.Fatalf("epoch 0: %+v", r)
	}
	f.endBlock() // reaches the carried payout entry: nothing more is paid
	eq(t, "provider after the carried entry", f.balance(f.provider), math.NewInt(price).Sub(fee))
	f.checkInvariant()
}
