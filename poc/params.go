package poc

import (
	"errors"
	"fmt"
)

// Work-function versions. A proof carries its version and must match the
// chain's params; switching the params' version (a governance change, all
// validators at one height) refuses the other version's proofs from then
// on.
const (
	// Version1 expands inputs and hashes outputs with SHA-256: ~14
	// compressions a nonce, which bound a GPU's rate before its tensor
	// cores do.
	Version1 uint32 = 1
	// Version2 expands inputs with Philox4x32-10 and hashes one 48-byte
	// block (a 24-byte key, the nonce, the activations folded to 16
	// bytes): the int8 matrix work dominates on every listed class.
	Version2 uint32 = 2
)

// Hard limits on Params. They bound the work any single call can be asked
// to do (the verifier runs on-chain, so a hostile parameter set must not be
// able to make it allocate or loop without bound) and keep the kernel's
// arithmetic inside its proven ranges (see kernel.go: Dim ≤ 4096 keeps every
// 32-bit SWAR lane and every int32 sum free of overflow).
const (
	// MaxDim is the widest layer allowed.
	MaxDim = 4096
	// MaxLayers is the deepest network allowed.
	MaxLayers = 64
	// MaxSampleSize is the largest k allowed.
	MaxSampleSize = 256
	// MaxProofNoncesCap is the largest MaxProofNonces allowed, and the cap
	// Proof.UnmarshalBinary applies without Params.
	MaxProofNoncesCap = 1 << 16
	// BasisPoints is 100 % in SlackBP's unit.
	BasisPoints = 10000
)

// Params are the chain-level Proof-of-Compute parameters. They describe the
// network (shape and requantisation), the statistics (expected count,
// slack, sample size) and the limits; the per-epoch difficulty and required
// count come from EpochTarget.
type Params struct {
	// Version selects the work function; proofs carry it and must match.
	Version uint32
	// Dim is the width of every layer (activations are Dim int8 values,
	// each layer's weights a Dim×Dim int8 matrix). Multiple of 32
	// (the kernel accumulates in chunks of 32).
	Dim uint32
	// Layers is the number of int8×int8→int32 matrix products per nonce.
	Layers uint32
	// SampleSize is k, the number of submitted nonces the verifier
	// recomputes. A prover that fabricated a fraction f passes with
	// probability at most (1−f)^k.
	SampleSize uint32
	// ExpectedValid is λ, the number of valid nonces an honest machine
	// running at exactly its class rate is expected to find per epoch; the
	// difficulty is set per epoch so that the expectation is at least λ.
	ExpectedValid uint64
	// SlackBP is the slack in basis points: required = expected × (1 − slack).
	SlackBP uint32
	// MaxProofNonces caps the nonces one proof may carry (and so its size
	// and the verifier's parse cost).
	MaxProofNonces uint32
	// NonceBits bounds nonces to [0, 2^NonceBits): compact encodings and
	// room for a GPU's 64-bit counters; a larger nonce is malformed.
	NonceBits uint32
	// MinDifficulty is the smallest difficulty EpochTarget accepts. It is
	// what keeps verification ≤ 0.1 % of proving: the verifier recomputes
	// k nonces, the prover evaluated about λ × difficulty.
	MinDifficulty uint64
	// H100NoncesPerSecond is the calibrated rate of one H100-equivalent GPU
	// on this network, in nonces evaluated per second. Class rates scale it
	// by the class's milli-H100 figure (see ClassRates).
	H100NoncesPerSecond uint64
}

// DefaultParams returns the production parameters. The numbers and the
// reasoning behind each are in docs/poc.md ("Parameters").
func DefaultParams() Params {
	return Params{
		// v2 since issue #14: Philox inputs and a one-compression digest
		// leave the tensor cores the bulk of the work (docs/poc.md §4).
		Version: Version2,
		// 256×256 int8 layers, 4 deep: 262,144 MACs per nonce. Large enough
		// that a batch is a real GEMM on tensor cores, small enough that the
		// verifier's 40 recomputations plus weight generation fit in a few
		// milliseconds on one CPU core.
		Dim:    256,
		Layers: 4,
		// (1 − 0.25)^40 ≈ 1.0e-5 ≤ 1e-4: fabricating 25 % is caught with
		// probability ≥ 99.999 %; k = 33 would be the bare minimum.
		SampleSize: 40,
		// λ = 3000, slack 9 %: required = 2730. Honest Poisson(3000) falls
		// below 2730 with probability ≈ 2.7e-7; an 80 % machine that also
		// proves through the chain's grace (5 % more time at the default
		// window: Poisson(2520)) reaches 2730 with probability ≈ 1.9e-5.
		// Both stay under 1e-3 up to 8 % of extra time (docs/poc.md §7).
		ExpectedValid:  3000,
		SlackBP:        900,
		MaxProofNonces: 4096,
		NonceBits:      48,
		// Verify/prove ≤ k / (λ × D) = 40 / (3000 × 2048) ≈ 6.5e-6 in
		// nonces; the floor also covers weight generation (see docs).
		MinDifficulty: 2048,
		// Measured (docs/poc.md §14): the GPU prover's wgmma kernel
		// evaluates 1.51e9 v2 nonces/s on an H200 SXM (2026-12-05), whose
		// SMs and clocks an H100 SXM shares. 1.35e9 is 0.89 of it: an
		// honest card at 0.975 × this (87 % of the measured rate) still
		// clears an epoch with probability ≥ 1 − 1e-4, which covers clock
		// and power-cap spread.
		H100NoncesPerSecond: 1_350_000_000,
	}
}

// DevParams returns small parameters for tests and dev chains with
// few-second epochs: a 64-wide, 2-layer network (8,192 MACs per nonce)
// that one CPU core evaluates hundreds of thousands of times per second.
// The statistics (k, λ, slack) are the production ones.
func DevParams() Params {
	p := DefaultParams()
	p.Dim = 64
	p.Layers = 2
	// Low enough that every listed class gets an epoch target from the
	// dev chain's 2 s of proving: one L4 (118 milli-H100) has N = 11,800
	// and D = 3 (the chain's TestDevTargetsEveryClass).
	p.MinDifficulty = 2
	// A dev "H100" is one CPU core's worth of the dev network, so the demo
	// fleet's simulated agents can keep up on a laptop.
	p.H100NoncesPerSecond = 50_000
	return p
}

// MACsPerNonce is the number of int8 multiply-accumulates one nonce costs.
func (p Params) MACsPerNonce() uint64 {
	return uint64(p.Layers) * uint64(p.Dim) * uint64(p.Dim)
}

// Validate reports whether p is usable; every error wraps ErrBadParams.
func (p Params) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadParams}, a...)...)
	}
	switch {
	case p.Version != Version1 && p.Version != Version2:
		return fmt.Errorf("%w: params version %d, want %d or %d", ErrWrongVersion, p.Version, Version1, Version2)
	case p.Dim == 0 || p.Dim%32 != 0 || p.Dim > MaxDim:
		return bad("dim %d not a multiple of 32 in [32, %d]", p.Dim, MaxDim)
	case p.Layers == 0 || p.Layers > MaxLayers:
		return bad("layers %d not in [1, %d]", p.Layers, MaxLayers)
	case p.SampleSize == 0 || p.SampleSize > MaxSampleSize:
		return bad("sample size %d not in [1, %d]", p.SampleSize, MaxSampleSize)
	case p.MaxProofNonces == 0 || p.MaxProofNonces > MaxProofNoncesCap:
		return bad("max proof nonces %d not in [1, %d]", p.MaxProofNonces, MaxProofNoncesCap)
	case p.ExpectedValid == 0 || p.ExpectedValid > uint64(p.MaxProofNonces):
		return bad("expected valid %d not in [1, max proof nonces %d]", p.ExpectedValid, p.MaxProofNonces)
	case p.SlackBP >= BasisPoints:
		return bad("slack %d bp not below %d", p.SlackBP, BasisPoints)
	case p.NonceBits < 16 || p.NonceBits > 64:
		return bad("nonce bits %d not in [16, 64]", p.NonceBits)
	case p.MinDifficulty == 0:
		return bad("min difficulty is zero")
	case p.H100NoncesPerSecond == 0:
		return bad("H100 rate is zero")
	}
	return nil
}

// maxNonce returns the largest allowed nonce.
func (p Params) maxNonce() uint64 {
	if p.NonceBits >= 64 {
		return ^uint64(0)
	}
	return 1<<p.NonceBits - 1
}

// Sentinel errors. Each rejection has its own so callers (the chain's
// events, the agent's logs) can tell them apart with errors.Is.
var (
	// ErrBadParams: Params.Validate failed.
	ErrBadParams = errors.New("poc: invalid params")
	// ErrWrongVersion: a params version this package does not implement, or
	// a proof's version other than the params'.
	ErrWrongVersion = errors.New("poc: wrong version")
	// ErrEmptyProof: the proof has no nonces.
	ErrEmptyProof = errors.New("poc: empty proof")
	// ErrProofTooLarge: too many nonces or bytes.
	ErrProofTooLarge = errors.New("poc: proof too large")
	// ErrMalformed: the encoding does not parse canonically.
	ErrMalformed = errors.New("poc: malformed proof encoding")
	// ErrDuplicateNonce: a nonce repeats.
	ErrDuplicateNonce = errors.New("poc: duplicate nonce")
	// ErrUnsortedNonces: nonces are not ascending.
	ErrUnsortedNonces = errors.New("poc: nonces not sorted ascending")
	// ErrNonceOutOfRange: a nonce is ≥ 2^NonceBits.
	ErrNonceOutOfRange = errors.New("poc: nonce out of range")
	// ErrInvalidNonce: a sampled nonce recomputes above the target (forged, or made for another seed).
	ErrInvalidNonce = errors.New("poc: nonce digest not under target")
	// ErrInsufficientWork: fewer nonces than the target requires.
	ErrInsufficientWork = errors.New("poc: fewer valid nonces than required")
	// ErrBadTarget: the target is unusable under the params.
	ErrBadTarget = errors.New("poc: invalid epoch target")
	// ErrBadSampleSeed: the sample seed is empty or too long.
	ErrBadSampleSeed = errors.New("poc: sample seed missing or too long")
	// ErrUnknownClass: the GPU class is not in the rate table.
	ErrUnknownClass = errors.New("poc: unknown GPU class")
	// ErrEpochTooSmall: the epoch's difficulty would be below MinDifficulty.
	ErrEpochTooSmall = errors.New("poc: epoch too small for the minimum difficulty")
	// ErrOverflow: the epoch's nonce count overflows 64 bits.
	ErrOverflow = errors.New("poc: epoch work overflows 64 bits")
)
