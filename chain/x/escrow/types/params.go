package types

import (
	"fmt"
	"slices"
	"strings"

	errorsmod "cosmossdk.io/errors"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/poc"
)

// Bounds on params. Block hashes and times are kept for MaxEpochBlocks +
// MaxJudgeSpreadBlocks + 2 blocks: an epoch's proof is judged at most
// epoch_blocks + judge_spread_blocks after the block that seeds it, so any
// live lease's seed and window are still on hand whatever the params
// become later.
const (
	MaxEpochBlocks         = 20_000
	MaxProofGraceMs        = 7 * 24 * 3600 * 1000
	MaxJudgeSpreadBlocks   = 1_000
	MaxDisputeWindowBlocks = 1_000_000
	MaxEpochsPerLeaseLimit = 1_000_000
	MaxGPUsPerLease        = 1024
	MaxReasonLen           = 280
	BlockHashRetention     = MaxEpochBlocks + MaxJudgeSpreadBlocks + 2 + MaxCarryBlocks
	// MaxCarryBlocks is how far behind its due height the end-of-block
	// caps may push a judgement and still find the block hashes it needs
	// (a judgement carried further is settled as missed, never an error
	// that would halt the chain).
	MaxCarryBlocks = 10_000
	// Caps on one end-of-block's work, per queue, so a burst in one never
	// starves another and no block stalls: what does not fit stays due and
	// runs in the next blocks, oldest first. A settlement or a payout costs
	// 40–200 µs on a 2-core machine, a judgement (a PoC verification)
	// ~4 ms: 200 settlements keep the worst block of a 10 000-lease burst
	// under 50 ms (chain_endblock_ms_worst); 32 judgements a block judge
	// on time the proofs of ~19 000 leases with 600-block epochs.
	MaxJudgesPerBlock       = 32
	MaxSettlementsPerBlock  = 200
	MaxPayoutsPerBlock      = 200
	DefaultDenom            = "uhwy"
	basisPoints             = 10_000
	maxClassNameLen         = 32
	maxQuoteTTLSecondsLimit = 7 * 24 * 3600
	// maxProofWorkSeconds keeps window arithmetic in milliseconds far from
	// int64's range.
	maxProofWorkSeconds = 7 * 24 * 3600
)

// DefaultParams are production-shaped: 30-minute epochs at 1 s blocks, 52 s
// of proving per epoch plus the measured grace (54 s: 3.0 % of the
// lease's GPU time, paused for the proof; docs/poc.md §15 says why the
// epoch grew rather than the window shrank), verdicts up to 30 blocks
// after a proof lands, an hour to dispute, 1 % fee. The arbiter defaults
// to the governance account until genesis names one.
func DefaultParams() Params {
	return Params{
		Denom:               DefaultDenom,
		EpochBlocks:         1800,
		ProofWorkSeconds:    52,
		ProofGraceMs:        DefaultProofGraceMs,
		JudgeSpreadBlocks:   30,
		DisputeWindowBlocks: 3600,
		MaxMissedEpochs:     3,
		FeeBps:              100,
		Arbiter:             "",
		MaxEpochsPerLease:   24 * 2 * 30, // 30 days of 30-minute epochs
		MaxQuoteTtlSeconds:  600,
		Poc:                 PoCParamsFrom(poc.DefaultParams()),
		ClassRates:          DefaultClassRates(),
	}
}

// DefaultProofGraceMs is the grace past the work window, from the
// inclusion latency measured on the real chain (docs/poc.md §11).
const DefaultProofGraceMs = 2_000

// DevParams are for `highway dev` and tests: 10-block epochs, 2 s of
// proving on CPU at poc.DevParams plus the default grace, verdicts one or
// two blocks after a proof lands, disputes for 5 blocks.
func DevParams() Params {
	p := DefaultParams()
	p.EpochBlocks = 10
	p.JudgeSpreadBlocks = 2
	p.ProofWorkSeconds = 2
	p.DisputeWindowBlocks = 5
	p.MaxEpochsPerLease = 10_000
	p.Poc = PoCParamsFrom(poc.DevParams())
	return p
}

// DefaultClassRates is poc's datasheet table, sorted by class.
func DefaultClassRates() []ClassRate {
	var out []ClassRate
	for _, c := range poc.ClassRates() {
		out = append(out, ClassRate{Class: c.Class, MilliH100: c.MilliH100})
	}
	return out
}

// PoCParamsFrom converts poc.Params to their proto form.
func PoCParamsFrom(p poc.Params) PoCParams {
	return PoCParams{
		Version: p.Version, Dim: p.Dim, Layers: p.Layers, SampleSize: p.SampleSize,
		ExpectedValid: p.ExpectedValid, SlackBp: p.SlackBP, MaxProofNonces: p.MaxProofNonces,
		NonceBits: p.NonceBits, MinDifficulty: p.MinDifficulty, H100NoncesPerSecond: p.H100NoncesPerSecond,
	}
}

// ToPoC converts the proto form back to poc.Params.
func (p PoCParams) ToPoC() poc.Params {
	return poc.Params{
		Version: p.Version, Dim: p.Dim, Layers: p.Layers, SampleSize: p.SampleSize,
		ExpectedValid: p.ExpectedValid, SlackBP: p.SlackBp, MaxProofNonces: p.MaxProofNonces,
		NonceBits: p.NonceBits, MinDifficulty: p.MinDifficulty, H100NoncesPerSecond: p.H100NoncesPerSecond,
	}
}

// MilliH100 returns a class's rate (exact, case-sensitive match).
func (p Params) MilliH100(class string) (uint64, error) {
	for _, c := range p.ClassRates {
		if c.Class == class {
			return c.MilliH100, nil
		}
	}
	return 0, errorsmod.Wrapf(ErrUnknownClass, "%q", class)
}

// Validate checks every field; MsgUpdateParams and genesis use it.
func (p Params) Validate() error {
	if err := sdk.ValidateDenom(p.Denom); err != nil {
		return errorsmod.Wrapf(ErrInvalidParams, "denom: %v", err)
	}
	switch {
	case p.EpochBlocks == 0 || p.EpochBlocks > MaxEpochBlocks:
		return errorsmod.Wrapf(ErrInvalidParams, "epoch_blocks must be 1..%d", MaxEpochBlocks)
	case p.ProofWorkSeconds == 0 || p.ProofWorkSeconds > maxProofWorkSeconds:
		return errorsmod.Wrapf(ErrInvalidParams, "proof_work_seconds must be 1..%d", maxProofWorkSeconds)
	case p.ProofGraceMs > MaxProofGraceMs:
		return errorsmod.Wrapf(ErrInvalidParams, "proof_grace_ms must be ≤ %d", MaxProofGraceMs)
	case p.JudgeSpreadBlocks == 0 || p.JudgeSpreadBlocks > MaxJudgeSpreadBlocks:
		return errorsmod.Wrapf(ErrInvalidParams, "judge_spread_blocks must be 1..%d", MaxJudgeSpreadBlocks)
	case p.DisputeWindowBlocks > MaxDisputeWindowBlocks:
		return errorsmod.Wrapf(ErrInvalidParams, "dispute_window_blocks must be ≤ %d", MaxDisputeWindowBlocks)
	case p.MaxMissedEpochs == 0:
		return errorsmod.Wrap(ErrInvalidParams, "max_missed_epochs must be positive")
	case p.FeeBps > basisPoints:
		return errorsmod.Wrap(ErrInvalidParams, "fee_bps must be ≤ 10000")
	case p.MaxEpochsPerLease == 0 || p.MaxEpochsPerLease > MaxEpochsPerLeaseLimit:
		return errorsmod.Wrapf(ErrInvalidParams, "max_epochs_per_lease must be 1..%d", MaxEpochsPerLeaseLimit)
	case p.MaxQuoteTtlSeconds == 0 || p.MaxQuoteTtlSeconds > maxQuoteTTLSecondsLimit:
		return errorsmod.Wrapf(ErrInvalidParams, "max_quote_ttl_seconds must be 1..%d", maxQuoteTTLSecondsLimit)
	}
	if p.Arbiter != "" {
		if _, err := sdk.AccAddressFromBech32(p.Arbiter); err != nil {
			return errorsmod.Wrapf(ErrInvalidParams, "arbiter: %v", err)
		}
	}
	if err := p.Poc.ToPoC().Validate(); err != nil {
		return errorsmod.Wrapf(ErrInvalidParams, "poc: %v", err)
	}
	if len(p.ClassRates) == 0 {
		return errorsmod.Wrap(ErrInvalidParams, "class_rates must not be empty")
	}
	seen := map[string]bool{}
	for _, c := range p.ClassRates {
		if c.Class == "" || len(c.Class) > maxClassNameLen || strings.TrimSpace(c.Class) != c.Class {
			return errorsmod.Wrapf(ErrInvalidParams, "class name %q", c.Class)
		}
		if seen[c.Class] {
			return errorsmod.Wrapf(ErrInvalidParams, "class %q listed twice", c.Class)
		}
		seen[c.Class] = true
		if c.MilliH100 == 0 || c.MilliH100 > 1_000_000 {
			return errorsmod.Wrapf(ErrInvalidParams, "class %q: milli_h100 must be 1..1000000", c.Class)
		}
	}
	if !slices.IsSortedFunc(p.ClassRates, func(a, b ClassRate) int { return strings.Compare(a.Class, b.Class) }) {
		return errorsmod.Wrap(ErrInvalidParams, "class_rates must be sorted by class")
	}
	return nil
}

// Describe summarises the PoC params for logs and CLI output.
func (p PoCParams) Describe() string {
	return fmt.Sprintf("v%d %dx%d k=%d λ=%d", p.Version, p.Dim, p.Layers, p.SampleSize, p.ExpectedValid)
}
