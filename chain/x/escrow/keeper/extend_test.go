package keeper_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	errorsmod "cosmossdk.io/errors"
	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/chain/x/escrow/keeper"
	"github.com/highway-compute/highway/chain/x/escrow/types"
)

// extension returns the provider's signed quote to extend lease l by
// epochs at the lease's terms.
func (f *fixture) extension(l types.Lease, epochs uint64) types.Quote {
	f.t.Helper()
	f.nonce++
	return f.sign(types.Quote{
		Provider: l.Provider, Buyer: l.Buyer, GpuClass: l.GpuClass, Gpus: l.Gpus, PricePerEpoch: l.PricePerEpoch,
		Epochs: epochs, ExpiresAt: f.ctx.BlockTime().Unix() + 300, Nonce: f.nonce, ExtendsLease: l.Id,
	})
}

func (f *fixture) extend(l types.Lease, q types.Quote) (*types.MsgExtendLeaseResponse, error) {
	f.t.Helper()
	return deliver(f, f.ms.ExtendLease, &types.MsgExtendLease{Buyer: l.Buyer, LeaseId: l.Id, Quote: q})
}

// TestExtendLeaseRunsTheAddedEpochs: a two-epoch lease extended by two
// during its last epoch runs four epochs on its own schedule, and the
// money adds up to the micro-unit: the buyer pays four epochs, the
// provider earns four less the fee, nothing stays in escrow.
func TestExtendLeaseRunsTheAddedEpochs(t *testing.T) {
	f := newFixture(t)
	l := f.createLease(1, price, 2)
	for e := uint64(0); e < 2; e++ {
		f.advanceTo(epochStart(l, e))
		if err := f.submit(l, e, f.prove(l, e)); err != nil {
			t.Fatalf("epoch %d: %v", e, err)
		}
	}
	// In the last block of the last epoch: still in time.
	f.advanceTo(l.StartHeight + int64(2*l.EpochBlocks) - 1)
	res, err := f.extend(l, f.extension(l, 2))
	if err != nil {
		t.Fatalf("extend: %v", err)
	}
	f.requireEvent(&types.EventLeaseExtended{})
	if res.EpochsTotal != 4 || !res.Escrowed.Equal(math.NewInt(2*price)) {
		t.Fatalf("response = %+v", res)
	}
	eq(t, "buyer after extending", f.balance(f.buyer), math.NewInt(startFund-4*price))
	if got := f.lease(l.Id); got.EpochsTotal != 4 || got.StartHeight != l.StartHeight || got.EpochBlocks != l.EpochBlocks {
		t.Fatalf("lease after extending = %+v", got)
	}

	// Epoch 1's settlement no longer ends the lease.
	f.advanceTo(epochSettle(l, 1) + 1)
	if got := f.lease(l.Id); got.Status != types.LEASE_STATUS_ACTIVE || got.NextEpoch != 2 {
		t.Fatalf("after the original last epoch: %+v", got)
	}
	for e := uint64(2); e < 4; e++ {
		f.advanceTo(epochStart(l, e))
		if err := f.submit(l, e, f.prove(l, e)); err != nil {
			t.Fatalf("added epoch %d: %v", e, err)
		}
	}
	f.advanceTo(epochSettle(l, 3))
	f.endBlock()
	got := f.lease(l.Id)
	if got.Status != types.LEASE_STATUS_CLOSED || got.CloseReason != keeper.ReasonCompleted || got.EpochsCleared != 4 {
		t.Fatalf("lease at the new end = %+v", got)
	}
	f.advanceTo(f.ctx.BlockHeight() + int64(l.DisputeWindowBlocks) + 2)
	fee := math.NewInt(price * 250 / 10_000)
	eq(t, "buyer final", f.balance(f.buyer), math.NewInt(startFund-4*price))
	eq(t, "provider final", f.balance(f.provider), math.NewInt(4*price).Sub(fee.MulRaw(4)))
	eq(t, "fees final", f.feeBalance(), fee.MulRaw(4))
	eq(t, "module final", f.moduleBalance(), math.ZeroInt())
}

// TestExtendLeaseRejections: each way a buyer (or anyone) could try to
// stretch a lease beyond the provider's consent, or extend one that is not
// theirs or not running, is refused with a registered error and changes
// nothing.
func TestExtendLeaseRejections(t *testing.T) {
	impostor := secp256k1.GenPrivKeyFromSecret([]byte("impostor"))
	cases := []struct {
		name string
		msg  func(f *fixture, l types.Lease) *types.MsgExtendLease
		want *errorsmod.Error
	}{
		{"someone else's lease", func(f *fixture, l types.Lease) *types.MsgExtendLease {
			q := f.extension(l, 1)
			q.Buyer = f.stranger.String()
			return &types.MsgExtendLease{Buyer: f.stranger.String(), LeaseId: l.Id, Quote: f.sign(q)}
		}, types.ErrUnauthorized},
		{"quote for another buyer", func(f *fixture, l types.Lease) *types.MsgExtendLease {
			q := f.extension(l, 1)
			q.Buyer = f.stranger.String()
			return &types.MsgExtendLease{Buyer: l.Buyer, LeaseId: l.Id, Quote: f.sign(q)}
		}, types.ErrUnauthorized},
		{"a quote for a new lease", func(f *fixture, l types.Lease) *types.MsgExtendLease {
			return &types.MsgExtendLease{Buyer: l.Buyer, LeaseId: l.Id, Quote: f.quote(1, price, 1)}
		}, types.ErrInvalidQuote},
		{"a quote extending another lease", func(f *fixture, l types.Lease) *types.MsgExtendLease {
			q := f.extension(l, 1)
			q.ExtendsLease = l.Id + 1
			return &types.MsgExtendLease{Buyer: l.Buyer, LeaseId: l.Id, Quote: f.sign(q)}
		}, types.ErrInvalidQuote},
		{"lease id changed after signing", func(f *fixture, l types.Lease) *types.MsgExtendLease {
			other := f.createLease(1, price, 3)
			q := f.extension(l, 1)
			q.ExtendsLease = other.Id
			return &types.MsgExtendLease{Buyer: l.Buyer, LeaseId: other.Id, Quote: q}
		}, types.ErrQuoteSignature},
		{"epochs changed after signing", func(f *fixture, l types.Lease) *types.MsgExtendLease {
			q := f.extension(l, 1)
			q.Epochs = 5
			return &types.MsgExtendLease{Buyer: l.Buyer, LeaseId: l.Id, Quote: q}
		}, types.ErrQuoteSignature},
		{"a lower price", func(f *fixture, l types.Lease) *types.MsgExtendLease {
			q := f.extension(l, 1)
			q.PricePerEpoch = math.NewInt(price / 2)
			return &types.MsgExtendLease{Buyer: l.Buyer, LeaseId: l.Id, Quote: f.sign(q)}
		}, types.ErrInvalidQuote},
		{"more GPUs", func(f *fixture, l types.Lease) *types.MsgExtendLease {
			q := f.extension(l, 1)
			q.Gpus = 2
			return &types.MsgExtendLease{Buyer: l.Buyer, LeaseId: l.Id, Quote: f.sign(q)}
		}, types.ErrInvalidQuote},
		{"another class", func(f *fixture, l types.Lease) *types.MsgExtendLease {
			q := f.extension(l, 1)
			q.GpuClass = "A100"
			return &types.MsgExtendLease{Buyer: l.Buyer, LeaseId: l.Id, Quote: f.sign(q)}
		}, types.ErrInvalidQuote},
		{"another provider's quote", func(f *fixture, l types.Lease) *types.MsgExtendLease {
			q := f.extension(l, 1)
			q.Provider = sdk.AccAddress(impostor.PubKey().Address()).String()
			q, _ = types.SignQuote(chainID, q, impostor)
			return &types.MsgExtendLease{Buyer: l.Buyer, LeaseId: l.Id, Quote: q}
		}, types.ErrInvalidQuote},
		{"expired quote", func(f *fixture, l types.Lease) *types.MsgExtendLease {
			q := f.extension(l, 1)
			q.ExpiresAt = f.ctx.BlockTime().Unix()
			return &types.MsgExtendLease{Buyer: l.Buyer, LeaseId: l.Id, Quote: f.sign(q)}
		}, types.ErrQuoteExpired},
		{"more unsettled epochs than a lease may hold", func(f *fixture, l types.Lease) *types.MsgExtendLease {
			return &types.MsgExtendLease{Buyer: l.Buyer, LeaseId: l.Id, Quote: f.extension(l, f.params.MaxEpochsPerLease-2)}
		}, types.ErrExtension},
		{"insufficient funds", func(f *fixture, l types.Lease) *types.MsgExtendLease {
			return &types.MsgExtendLease{Buyer: l.Buyer, LeaseId: l.Id, Quote: f.extension(l, startFund/price)}
		}, types.ErrInsufficientFunds},
		{"unknown lease", func(f *fixture, l types.Lease) *types.MsgExtendLease {
			q := f.extension(l, 1)
			q.ExtendsLease = 999
			return &types.MsgExtendLease{Buyer: l.Buyer, LeaseId: 999, Quote: f.sign(q)}
		}, types.ErrLeaseNotFound},
		{"closed lease", func(f *fixture, l types.Lease) *types.MsgExtendLease {
			if _, err := deliver(f, f.ms.CloseLease, &types.MsgCloseLease{Sender: l.Buyer, LeaseId: l.Id}); err != nil {
				f.t.Fatal(err)
			}
			return &types.MsgExtendLease{Buyer: l.Buyer, LeaseId: l.Id, Quote: f.extension(l, 1)}
		}, types.ErrLeaseNotActive},
		{"disputed lease", func(f *fixture, l types.Lease) *types.MsgExtendLease {
			if _, err := deliver(f, f.ms.OpenDispute, &types.MsgOpenDispute{Buyer: l.Buyer, LeaseId: l.Id, Reason: "idle GPUs"}); err != nil {
				f.t.Fatal(err)
			}
			return &types.MsgExtendLease{Buyer: l.Buyer, LeaseId: l.Id, Quote: f.extension(l, 1)}
		}, types.ErrLeaseNotActive},
		{"after the last epoch ended", func(f *fixture, l types.Lease) *types.MsgExtendLease {
			f.advanceTo(l.StartHeight + int64(3*l.EpochBlocks))
			return &types.MsgExtendLease{Buyer: l.Buyer, LeaseId: l.Id, Quote: f.extension(l, 1)}
		}, types.ErrExtension},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			l := f.createLease(1, price, 3)
			msg := tc.msg(f, l)
			before := snapshot(f)
			_, err := deliver(f, f.ms.ExtendLease, msg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			before.requireUnchanged(t, f)
		})
	}

	t.Run("reused extension quote", func(t *testing.T) {
		f := newFixture(t)
		l := f.createLease(1, price, 3)
		q := f.extension(l, 1)
		if _, err := f.extend(l, q); err != nil {
			t.Fatal(err)
		}
		before := snapshot(f)
		if _, err := f.extend(l, q); !errors.Is(err, types.ErrQuoteReused) {
			t.Fatalf("err = %v, want ErrQuoteReused", err)
		}
		before.requireUnchanged(t, f)
	})
	t.Run("an extension quote cannot create a lease", func(t *testing.T) {
		f := newFixture(t)
		l := f.createLease(1, price, 3)
		before := snapshot(f)
		_, err := deliver(f, f.ms.CreateLease, &types.MsgCreateLease{Buyer: l.Buyer, Quote: f.extension(l, 3)})
		if !errors.Is(err, types.ErrInvalidQuote) {
			t.Fatalf("err = %v, want ErrInvalidQuote", err)
		}
		before.requireUnchanged(t, f)
	})
}

// TestCreationQuotesSignTheSameBytes: adding extends_lease did not change
// what a creation quote signs, so quotes signed before the field existed
// still verify. The first digest was taken from the code before the field
// (commit bbe94e6); the second pins the extension's encoding.
func TestCreationQuotesSignTheSameBytes(t *testing.T) {
	q := types.Quote{Provider: "p", Buyer: "b", GpuClass: "H100", Gpus: 1, PricePerEpoch: math.NewInt(5), Epochs: 2, ExpiresAt: 3, Nonce: 4}
	for _, tc := range []struct {
		extends uint64
		want    string
	}{
		{0, "31be288e3ac38328494f93775be29514eb2b3df1c7d3c922d4ba8c7935e4d94c"},
		{7, "d08c7e664f8f18ec460fbcc48bc1d9869ebefc9b771f3be0216aa098ed2554c0"},
	} {
		q.ExtendsLease = tc.extends
		if got := fmt.Sprintf("%x", sha256.Sum256(types.QuoteSignBytes(chainID, q))); got != tc.want {
			t.Errorf("extends_lease %d: sign bytes digest %s, want %s", tc.extends, got, tc.want)
		}
	}
}
