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
		if l.Status == LEASE_STATUS_ACTIVE {
			if err := l.checkTerms(); err != nil {
				return err
			}
		}
	}
	for _, e := range gs.Epochs {
		if !seen[e.LeaseId] {
			return fmt.Errorf("epoch record for unknown lease %d", e.LeaseId)
		}
	}
	settled := map[[2]uint64]bool{}
	for _, e := range gs.Epochs {
		settled[[2]uint64{e.LeaseId, e.Epoch}] = true
	}
	leases := map[uint64]Lease{}
	for _, l := range gs.Leases {
		leases[l.Id] = l
	}
	pending := map[[2]uint64]bool{}
	for _, p := range gs.PendingProofs {
		l, ok := leases[p.LeaseId]
		key := [2]uint64{p.LeaseId, p.Epoch}
		switch {
		case !ok:
			return fmt.Errorf("pending proof for unknown lease %d", p.LeaseId)
		case pending[key] || settled[key]:
			return fmt.Errorf("lease %d epoch %d: a pending proof for an epoch that already has one or a verdict", p.LeaseId, p.Epoch)
		case p.Epoch >= l.EpochsTotal:
			return fmt.Errorf("pending proof for lease %d epoch %d: the lease has %d epochs", p.LeaseId, p.Epoch, l.EpochsTotal)
		}
		pending[key] = true
		if err := l.checkTerms(); err != nil {
			return err
		}
		settle := l.StartHeight + int64((p.Epoch+1)*l.EpochBlocks+l.JudgeSpreadBlocks)
		if p.JudgeHeight <= p.SubmittedHeight || p.JudgeHeight > settle {
			return fmt.Errorf("pending proof for lease %d epoch %d: judge height %d not in (%d, %d]", p.LeaseId, p.Epoch, p.JudgeHeight, p.SubmittedHeight, settle)
		}
		if err := p.Poc.ToPoC().Validate(); err != nil {
			return fmt.Errorf("pending proof for lease %d epoch %d: %w", p.LeaseId, p.Epoch, err)
		}
	}
	return nil
}

// checkTerms checks the timing terms a lease copied from params (a lease
// written before a term existed has it zero, and would settle wrongly).
func (l Lease) checkTerms() error {
	switch {
	case l.EpochBlocks == 0 || l.EpochBlocks > MaxEpochBlocks:
		return fmt.Errorf("lease %d: epoch_blocks %d not in 1..%d", l.Id, l.EpochBlocks, MaxEpochBlocks)
	case l.JudgeSpreadBlocks == 0 || l.JudgeSpreadBlocks > MaxJudgeSpreadBlocks:
		return fmt.Errorf("lease %d: judge_spread_blocks %d not in 1..%d (a lease from before verdicts were judged later: set its terms)", l.Id, l.JudgeSpreadBlocks, MaxJudgeSpreadBlocks)
	case l.ProofWorkSeconds == 0 || l.ProofWorkSeconds > maxProofWorkSeconds:
		return fmt.Errorf("lease %d: proof_work_seconds %d not in 1..%d", l.Id, l.ProofWorkSeconds, maxProofWorkSeconds)
	case l.ProofGraceMs > MaxProofGraceMs:
		return fmt.Errorf("lease %d: proof_grace_ms %d above %d", l.Id, l.ProofGraceMs, MaxProofGraceMs)
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
