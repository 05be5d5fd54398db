package types

import (
	"fmt"

	errorsmod "cosmossdk.io/errors"
	"cosmossdk.io/math"
)

// DefaultGenesis is an empty escrow with default params.
func DefaultGenesis() *GenesisState {
	return &GenesisState{Params: DefaultParams(), NextLeaseId: 1}
}

// Validate checks params and that every lease's books balance:
// price × epochs = remaining + pending + frozen + paid + fees + refunded.
func (gs GenesisState) Validate() error {
	if err := gs.Params.Validate(); err != nil {
		return err
	}
	seen := map[uint64]bool{}
	for _, l := range gs.Leases {
		if l.Id == 0 || l.Id >= gs.NextLeaseId {
			return errorsmod.Wrapf(ErrInvalidParams, "lease id %d not below next_lease_id %d", l.Id, gs.NextLeaseId)
		}
		if seen[l.Id] {
			return fmt.Errorf("duplicate lease %d", l.Id)
		}
		seen[l.Id] = true
		if err := l.CheckBooks(); err != nil {
			return err
		}
	}
	for _, e := range gs.Epochs {
		if !seen[e.LeaseId] {
			return fmt.Errorf("epoch record for unknown lease %d", e.LeaseId)
		}
	}
	return nil
}

// Escrowed is what the buyer paid in: price × epochs.
func (l Lease) Escrowed() math.Int {
	return l.PricePerEpoch.Mul(math.NewIntFromUint64(l.EpochsTotal))
}

// Held is what the module account holds for the lease.
func (l Lease) Held() math.Int {
	return l.Remaining.Add(l.Pending).Add(l.Frozen)
}

// CheckBooks verifies the lease's conservation law and that no bucket is
// negative.
func (l Lease) CheckBooks() error {
	for name, v := range map[string]math.Int{
		"remaining": l.Remaining, "pending": l.Pending, "frozen": l.Frozen,
		"paid": l.Paid, "fees": l.Fees, "refunded": l.Refunded,
	} {
		if v.IsNil() || v.IsNegative() {
			return fmt.Errorf("lease %d: %s is negative or missing", l.Id, name)
		}
	}
	out := l.Held().Add(l.Paid).Add(l.Fees).Add(l.Refunded)
	if !out.Equal(l.Escrowed()) {
		return fmt.Errorf("lease %d: books do not balance: escrowed %s, accounted %s", l.Id, l.Escrowed(), out)
	}
	return nil
}
