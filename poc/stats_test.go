package poc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"testing"
)

// splitmix is the tests' seeded deterministic PRNG (SplitMix64).
type splitmix uint64

func (s *splitmix) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// float returns a uniform float64 in [0, 1).
func (s *splitmix) float() float64 { return float64(s.next()>>11) / (1 << 53) }

// poissonCDF returns P(X ≤ x) for X ~ Poisson(mean), summed in log space.
func poissonCDF(mean float64, x int) float64 {
	if x < 0 {
		return 0
	}
	var sum float64
	for i := 0; i <= x; i++ {
		lg, _ := math.Lgamma(float64(i) + 1)
		sum += math.Exp(float64(i)*math.Log(mean) - mean - lg)
	}
	return sum
}

// windowStretch is the extra proving time the chain's acceptance window
// gives over the work window the target is sized for: the grace plus one
// block at the default 60 s window (2 s + 1 s = 5 %). A slow machine
// proves for all of it; an honest agent proves for the work window only.
const windowStretch = 1.05

// tails returns, for an epoch with expected count e and required count r,
// the honest failure probability P(Pois(e) < r) and the probability that
// an 80 % machine proving through the whole acceptance window passes,
// P(Pois(0.8·stretch·e) ≥ r).
func tails(e float64, r uint64) (honestFail, slowPass float64) {
	return poissonCDF(e, int(r)-1), 1 - poissonCDF(0.8*windowStretch*e, int(r)-1)
}

// TestPoissonThresholds checks the exact Poisson tails at the default
// target and at every lease shape EpochTarget can produce from the class
// table, a range of GPU counts and windows.
func TestPoissonThresholds(t *testing.T) {
	p := DefaultParams()
	hf, sp := tails(3000, 2730)
	t.Logf("λ=3000 R=2730: honest fail %.3g, 80%% pass %.3g", hf, sp)
	if hf >= 1e-3 || sp >= 1e-3 {
		t.Fatalf("default tails: honest fail %g, 80%% pass %g", hf, sp)
	}
	worstH, worstS := 0.0, 0.0
	for _, c := range ClassRates() {
		for _, g := range []uint32{1, 2, 3, 8} {
			for _, w := range []uint64{60, 97, 600, 3600} {
				tg, err := EpochTarget(p, c.Class, g, w)
				if errors.Is(err, ErrEpochTooSmall) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				n := float64(p.H100NoncesPerSecond) * float64(c.MilliH100*uint64(g)) / 1000 * float64(w)
				// Exact expectation: N × P(valid) with P = (⌊(2⁶⁴−1)/D⌋+1)/2⁶⁴.
				e := n * (float64(threshold(tg.Difficulty)) + 1) / math.Exp2(64)
				hf, sp := tails(e, tg.Required)
				worstH, worstS = math.Max(worstH, hf), math.Max(worstS, sp)
				if hf >= 1e-3 || sp >= 1e-3 {
					t.Fatalf("%s×%d %ds: E=%.1f R=%d honest fail %g, 80%% pass %g", c.Class, g, w, e, tg.Required, hf, sp)
				}
			}
		}
	}
	t.Logf("worst over the table: honest fail %.3g, 80%% pass %.3g", worstH, worstS)
}

// poissonSampler draws Poisson variates by inversion of a tabulated CDF.
type poissonSampler []float64

func newPoissonSampler(mean float64) poissonSampler {
	max := int(mean + 12*math.Sqrt(mean) + 20)
	cdf := make([]float64, max+1)
	for i := range cdf {
		lg, _ := math.Lgamma(float64(i) + 1)
		pm := math.Exp(float64(i)*math.Log(mean) - mean - lg)
		if i > 0 {
			cdf[i] = cdf[i-1] + pm
		} else {
			cdf[i] = pm
		}
	}
	return cdf
}

func (ps poissonSampler) draw(r *splitmix) uint64 {
	return uint64(sort.SearchFloat64s(ps, r.float()))
}

// TestSimulateEpochPassRates simulates many epochs of an honest machine
// and of one delivering 80 % of its class's throughput against the default
// required count, and checks the observed rates against the thresholds
// and the exact tails.
func TestSimulateEpochPassRates(t *testing.T) {
	p := DefaultParams()
	tg, err := EpochTarget(p, "H100", 1, 60)
	if err != nil {
		t.Fatal(err)
	}
	e := float64(p.ExpectedValid)
	const trials = 400_000
	rng := splitmix(20240601)
	for _, tc := range []struct {
		name  string
		speed float64
		fail  bool // whether we count failures (honest) or passes (slow)
	}{{"honest", 1, true}, {"80%", 0.8, false}} {
		t.Run(tc.name, func(t *testing.T) {
			speed := tc.speed
			if !tc.fail {
				speed *= windowStretch // the slow machine proves through the grace
			}
			ps := newPoissonSampler(e * speed)
			bad := 0
			for i := 0; i < trials; i++ {
				passed := ps.draw(&rng) >= tg.Required
				if passed == !tc.fail {
					bad++
				}
			}
			hf, sp := tails(e, tg.Required)
			exact := hf
			if !tc.fail {
				exact = sp
			}
			obs := float64(bad) / trials
			sigma := math.Sqrt(exact * (1 - exact) / trials)
			t.Logf("%s: observed %.2e (%d/%d), exact %.2e", tc.name, obs, bad, trials, exact)
			if obs >= 1e-3 || math.Abs(obs-exact) > 5*sigma+1.0/trials {
				t.Fatalf("observed %g, exact %g", obs, exact)
			}
		})
	}
}

// TestSimulateDetection measures how often a proof with a fraction f of
// fabricated nonces survives the verifier's sample, over many sample
// seeds, and compares with the exact hypergeometric rate and the
// (1 − f)^k bound.
func TestSimulateDetection(t *testing.T) {
	p := DefaultParams()
	k := int(p.SampleSize)
	const n = 3000 // λ: the size of a typical proof
	const trials = 20_000
	rng := splitmix(7)
	for _, f := range []float64{0.05, 0.10, 0.25, 0.50} {
		t.Run(fmt.Sprintf("f=%v", f), func(t *testing.T) {
			m := int(math.Round(f * n))
			fake := make([]bool, n)
			perm := make([]int, n)
			for i := range perm {
				perm[i] = i
			}
			var seed Seed
			var sample [16]byte
			passes := 0
			for trial := 0; trial < trials; trial++ {
				// A fresh fabricated subset and fresh randomness each trial.
				for i := n - 1; i > 0; i-- {
					j := int(rng.next() % uint64(i+1))
					perm[i], perm[j] = perm[j], perm[i]
				}
				clear(fake)
				for _, i := range perm[:m] {
					fake[i] = true
				}
				for i := 0; i < 32; i += 8 {
					v := rng.next()
					for b := 0; b < 8; b++ {
						seed[i+b] = byte(v >> (8 * b))
					}
				}
				for i := range sample {
					sample[i] = byte(rng.next())
				}
				caught := false
				for _, i := range Sample(sample[:], seed, n, k) {
					if fake[i] {
						caught = true
						break
					}
				}
				if !caught {
					passes++
				}
			}
			// Exact: C(n−m, k)/C(n, k) = Π (n−m−i)/(n−i).
			exact := 1.0
			for i := 0; i < k; i++ {
				exact *= float64(n-m-i) / float64(n-i)
			}
			bound := math.Pow(1-f, float64(k))
			obs := float64(passes) / trials
			sigma := math.Sqrt(exact * (1 - exact) / trials)
			t.Logf("f=%.2f: pass %.5f (%d/%d), exact %.3g, (1−f)^k %.3g, detection %.5f",
				f, obs, passes, trials, exact, bound, 1-obs)
			if exact > bound || math.Abs(obs-exact) > 5*sigma+2.0/trials {
				t.Fatalf("observed %g, exact %g, bound %g", obs, exact, bound)
			}
			if f >= 0.25 && (bound > 1e-4 || passes > 2) {
				t.Fatalf("f=%v: bound %g, %d passes", f, bound, passes)
			}
		})
	}
}

// TestDetectionEndToEnd runs the real verifier on proofs with 25 % and
// 5 % fabricated nonces under many sample seeds.
func TestDetectionEndToEnd(t *testing.T) {
	f := devProof(t)
	ns := append([]uint64(nil), f.proof.Nonces...)
	n := len(ns)
	m, _ := NewModel(f.p, f.seed)
	for _, frac := range []int{4, 20} { // about 1 in 4 (≈ 25 %) and 1 in 20 (≈ 5 %)
		forged := append([]uint64(nil), ns...)
		fakes := 0
		for i := 0; i < n; i += frac {
			// Replace with the next invalid nonce above it, below its successor.
			for v := forged[i] + 1; i+1 == n || v < ns[i+1]; v++ {
				if !f.t.Valid(m.Compute(v)) && (i == 0 || v > forged[i-1]) {
					forged[i] = v
					fakes++
					break
				}
			}
		}
		pr := withNonces(f.proof, forged)
		passes := 0
		const trials = 300
		for s := 0; s < trials; s++ {
			err := Verify(f.p, f.seed, f.t, pr, []byte(fmt.Sprint("sample", s)))
			if err == nil {
				passes++
			} else if !errors.Is(err, ErrInvalidNonce) {
				t.Fatal(err)
			}
		}
		rate := float64(fakes) / float64(n)
		bound := math.Pow(1-rate, float64(f.p.SampleSize))
		t.Logf("fabricated %d/%d: %d/%d passed, (1−f)^k = %.3g", fakes, n, passes, trials, bound)
		if frac == 4 && passes != 0 {
			t.Fatalf("25%% fabricated passed %d times", passes)
		}
		if frac == 20 && float64(passes) > trials*bound+5*math.Sqrt(trials*bound)+1 {
			t.Fatalf("5%% fabricated passed %d times, bound %g", passes, bound)
		}
	}
	_ = context.Background
}
