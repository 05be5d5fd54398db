package poc

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// ClassRate is one GPU class's throughput relative to an H100 SXM, in
// milli-H100 (1000 = one H100), from NVIDIA's published dense (no
// sparsity) INT8 tensor-core TOPS. The work function is a batched int8
// GEMM, so peak dense INT8 throughput is the right first-order ratio; a
// GPU backend benchmark per class replaces these when it exists.
type ClassRate struct {
	// Class is the GPU model name as the agent reports it.
	Class string
	// DenseInt8TOPS is the datasheet figure the ratio is computed from.
	DenseInt8TOPS uint32
	// MilliH100 = round(1000 × DenseInt8TOPS / 1979).
	MilliH100 uint64
}

// h100DenseInt8TOPS is the H100 SXM5 datasheet figure: 3,958 INT8 TOPS
// with 2:4 sparsity, 1,979 dense.
const h100DenseInt8TOPS = 1979

// classRates is sorted by Class so lookup is a binary search and the
// order never depends on a map. Sources (dense = half the "with sparsity"
// figure NVIDIA headlines): H100 SXM / H200 SXM datasheets 1,979; H100
// PCIe 1,513; A100 SXM/PCIe 80GB 624; L40S 733; L4 242; RTX 4090 (Ada
// whitepaper) 660; B200 (DGX/HGX B200: 72 POPS INT8 sparse for 8 GPUs →
// 4,500 dense each). CPU-SIM is the dev fleet's simulated GPU: one
// H100-equivalent of DevParams.
var classRates = []ClassRate{
	{"A100", 624, 315},
	{"B200", 4500, 2274},
	{"CPU-SIM", h100DenseInt8TOPS, 1000},
	{"H100", 1979, 1000},
	{"H100-PCIE", 1513, 765},
	{"H200", 1979, 1000},
	{"L4", 242, 122},
	{"L40S", 733, 370},
	{"RTX4090", 660, 334},
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
