package poc

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// ClassRate is one GPU class's expected work-function throughput relative
// to an H100 SXM, in milli-H100 (1000 = one H100): the rate of the GPU
// prover that runs on the class, not the datasheet's headline. On Hopper
// the prover is the wgmma kernel; elsewhere (Ampere, Ada, Blackwell,
// which have no wgmma) it is the mma.sync kernel. Both were measured on
// an H200 SXM on 2026-12-05 (docs/poc.md §14) as shares of the card's
// int8 mma.sync ceiling: wgmma 0.6096, mma.sync 0.3841. A class's rate is
// its mma.sync rate times its kernel's share; Hopper rows are measured,
// the others assume their kernel reaches the share it reached on the
// H200. The verification PoC's measured rate (Offer's measured
// H100-equivalents) is what buyers see per machine.
type ClassRate struct {
	// Class is the GPU model name as the agent reports it.
	Class string
	// MmaTOPS is the card's int8 mma.sync rate in TOPS (dense): SMs ×
	// boost clock × ops per SM per clock (Ampere 4,096, Ada 2,048, Hopper
	// 4,963 as measured).
	MmaTOPS uint32
	// Wgmma: the prover runs the wgmma kernel here (Hopper, sm_90).
	Wgmma bool
	// MilliH100 = round(1000 × MmaTOPS × share / (1297 × 0.6096)), share
	// being the class's kernel's (wgmmaShareBP or mmaShareBP).
	MilliH100 uint64
}

// h100MmaTOPS is the H100 SXM's int8 mma.sync rate: 1,297 TOPS measured
// on an H200 SXM (same 132 SMs at 1.98 GHz) on 2026-12-04 (1,299 on
// 2026-12-05).
const h100MmaTOPS = 1297

// The kernels' shares of the mma.sync ceiling, in basis points, measured
// in one run on an H200 SXM on 2026-12-05: the wgmma kernel evaluated
// 1.510e9 nonces/s (7.918e14 int8 ops/s), the mma.sync kernel 0.952e9,
// the ceiling 1.299e15 ops/s.
const (
	wgmmaShareBP = 6096
	mmaShareBP   = 3841
)

// classRates is sorted by Class so lookup is a binary search and the
// order never depends on a map. MmaTOPS per class (SMs × GHz × ops/clk):
// A100 108 × 1.41 × 4,096 = 624; B200 148 × 1.965 × 4,963 = 1,443
// (Blackwell's mma.sync per SM assumed Hopper's: unmeasured); H100 and
// H200 SXM 1,297 (measured); H100 PCIe 114 × 1.755 × 4,963 = 993; L4
// 58 × 2.04 × 2,048 = 242; L40S 142 × 2.52 × 2,048 = 733; RTX 4090
// 128 × 2.52 × 2,048 = 660. CPU-SIM is the dev fleet's simulated GPU: one
// H100-equivalent of DevParams.
var classRates = []ClassRate{
	{"A100", 624, false, 303},
	{"B200", 1443, false, 701},
	{"CPU-SIM", h100MmaTOPS, true, 1000}, // an H100 by definition: the H100 row's figures
	{"H100", 1297, true, 1000},
	{"H100-PCIE", 993, true, 766},
	{"H200", 1297, true, 1000},
	{"L4", 242, false, 118},
	{"L40S", 733, false, 356},
	{"RTX4090", 660, false, 321},
}

// ClassRates returns the rate table, sorted by class name (a copy).
func ClassRates() []ClassRate { return slices.Clone(classRates) }

// LookupClass returns the rate of a GPU class (case-insensitive name).
func LookupClass(class string) (ClassRate, error) {
	name := strings.ToUpper(class)
	i, ok := slices.BinarySearchFunc(classRates, name, func(c ClassRate, n string) int {
		return strings.Compare(c.Class, n)
	})
	if !ok {
		return ClassRate{}, fmt.Errorf("%w: %q", ErrUnknownClass, class)
	}
	return classRates[i], nil
}

// H100Equivalents returns gpus × the class's rate in milli-H100 (fixed
// point: 1000 = one H100).
func H100Equivalents(class string, gpus uint32) (uint64, error) {
	c, err := LookupClass(class)
	if err != nil {
		return 0, err
	}
	return c.MilliH100 * uint64(gpus), nil
}

// Target is what one epoch of one lease must prove.
type Target struct {
	// Difficulty D: a nonce is valid with probability ≥ 1/D.
	Difficulty uint64
	// Required is the minimum count of valid nonces for the epoch to clear.
	Required uint64
}

// Valid reports whether a digest is under the target.
func (t Target) Valid(digest [32]byte) bool {
	return t.Difficulty != 0 && digestPrefix(&digest) <= threshold(t.Difficulty)
}

// EpochTarget computes the target for gpus GPUs of a class proving for
// windowSeconds.
func EpochTarget(p Params, class string, gpus uint32, windowSeconds uint64) (Target, error) {
	milli, err := H100Equivalents(class, gpus)
	if err != nil {
		return Target{}, err
	}
	return EpochTargetMilli(p, milli, windowSeconds)
}

// RequiredCount is EpochTarget's Required: GPUs × class rate × window ×
// (1 − slack), counted in valid nonces.
func RequiredCount(p Params, class string, gpus uint32, windowSeconds uint64) (uint64, error) {
	t, err := EpochTarget(p, class, gpus, windowSeconds)
	return t.Required, err
}

// EpochTargetMilli computes the target for a fleet of milliH100
// milli-H100s proving for windowSeconds.
//
// N = H100NoncesPerSecond × milliH100 / 1000 × window nonces are expected
// to be evaluated. The difficulty D = ⌊N / λ⌋ makes the expected count of
// valid nonces E = N/D ≥ λ (so the statistics of docs/poc.md hold at
// every lease size), and Required = ⌊N × (1 − slack) / D⌋ = ⌊E(1 − slack)⌋.
// D below MinDifficulty is refused: the window is too short to make
// verification negligible next to proving.
func EpochTargetMilli(p Params, milliH100, windowSeconds uint64) (Target, error) {
	if err := p.Validate(); err != nil {
		return Target{}, err
	}
	// N = rate × milli × window / 1000, in 128 bits, must fit 64.
	hi, lo := bits.Mul64(p.H100NoncesPerSecond, milliH100)
	if hi >= 1000 {
		return Target{}, ErrOverflow
	}
	perSec, _ := bits.Div64(hi, lo, 1000)
	hi, n := bits.Mul64(perSec, windowSeconds)
	if hi != 0 {
		return Target{}, ErrOverflow
	}
	d := n / p.ExpectedValid
	if d < p.MinDifficulty {
		return Target{}, fmt.Errorf("%w: difficulty %d < %d (N=%d nonces)", ErrEpochTooSmall, d, p.MinDifficulty, n)
	}
	// q = N × (10000 − slack) / D ≈ 10000·λ fits 64 bits, so Div64's
	// precondition (high word < D) holds; checked anyway, never panics.
	hi, lo = bits.Mul64(n, uint64(BasisPoints-p.SlackBP))
	if hi >= d {
		return Target{}, ErrOverflow
	}
	q, _ := bits.Div64(hi, lo, d)
	return Target{Difficulty: d, Required: q / BasisPoints}, nil
}

// MeasuredMilliH100 is the rate a proof of nonces valid nonces, found in
// windowSeconds at target t, shows in milli-H100 under p: each nonce is
// valid with probability about 1/D, so n of them stand for about n·D
// evaluations, and n·D·1000 / (H100NoncesPerSecond · window) is the
// prover's rate in thousandths of an H100. The figure's noise is √n / n
// (1.8 % at λ = 3000), and a proof holds at most MaxProofNonces nonces, so
// it reads at most MaxProofNonces/λ (1.37× at the defaults) the rate it was
// challenged for. 0 when the rate or window is 0; saturates rather than
// overflowing.
func MeasuredMilliH100(p Params, t Target, nonces int, windowSeconds uint64) uint64 {
	hi, per := bits.Mul64(p.H100NoncesPerSecond, windowSeconds)
	if per == 0 || hi != 0 || nonces <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(nonces), t.Difficulty)
	if hi != 0 {
		return ^uint64(0)
	}
	hi, lo = bits.Mul64(lo, 1000)
	if hi >= per {
		return ^uint64(0)
	}
	q, _ := bits.Div64(hi, lo, per)
	return q
}
