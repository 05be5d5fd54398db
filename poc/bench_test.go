package poc

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Benchmarks for `make bench` (run with -benchtime=1x): each does a fixed
// amount of internal work per iteration and reports its figures as
// BENCH:<name>:<unit> metrics, so one iteration is already meaningful.

// proveBenchNonces is the prover's fixed work: 16,384 nonces at the
// default shape, 4.3e9 MACs.
const proveBenchNonces = 16384

var (
	verifyOnce    sync.Once
	verifyFixture devFixture
	verifyOnceV2  sync.Once
	verifyFixV2   devFixture
)

// defaultVerifyFixture finds SampleSize valid nonces at the default shape
// and the minimum difficulty (≈ 82,000 nonces scanned), so the verifier
// recomputes k nonces and accepts: the worst case it allows on-chain.
func defaultVerifyFixture(b *testing.B) devFixture {
	verifyOnce.Do(func() { verifyFixture = verifyFixtureFor(DefaultParams()) })
	if len(verifyFixture.proof.Nonces) != int(verifyFixture.p.SampleSize) {
		b.Fatalf("fixture has %d nonces", len(verifyFixture.proof.Nonces))
	}
	return verifyFixture
}

func verifyFixtureFor(params Params) devFixture {
	p := params
	p.MaxProofNonces = p.SampleSize // stop once k are found
	p.ExpectedValid = uint64(p.SampleSize)
	seed := DeriveSeed([]byte("bench-block"), 1, 1, []byte("bench-provider"))
	tg := Target{Difficulty: p.MinDifficulty, Required: uint64(p.SampleSize)}
	proof, err := Prove(context.Background(), CPUBackend{}, p, seed, tg, ProveOptions{})
	if err != nil {
		panic(err)
	}
	return devFixture{p: params, seed: seed, t: tg, proof: proof, sample: []byte("bench-sample")}
}

// proveRate returns the prover's nonces/s over a fixed range of nonces
// (workers 0 = all cores).
func proveRate(b *testing.B, workers int, nonces uint64) float64 {
	return proveRateFor(b, DefaultParams(), workers, nonces)
}

func proveRateFor(b *testing.B, p Params, workers int, nonces uint64) float64 {
	seed := testSeed(9)
	m, err := NewModel(p, seed)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	_, err = ProveModel(context.Background(), CPUBackend{Workers: workers}, p, m, Target{Difficulty: p.MinDifficulty}, ProveOptions{Limit: nonces})
	if err != nil {
		b.Fatal(err)
	}
	return float64(nonces) / time.Since(start).Seconds()
}

func naiveRate(b *testing.B) float64 {
	p := DefaultParams()
	m, err := NewModel(p, testSeed(9))
	if err != nil {
		b.Fatal(err)
	}
	const n = 64
	start := time.Now()
	for i := uint64(0); i < n; i++ {
		m.Compute(i)
	}
	return n * float64(p.MACsPerNonce()) / time.Since(start).Seconds()
}

// BenchmarkProve measures the CPU prover on all cores at the default shape.
func BenchmarkProve(b *testing.B) {
	p := DefaultParams()
	var nps float64
	for i := 0; i < b.N; i++ {
		nps = proveRate(b, 0, proveBenchNonces)
	}
	macs := nps * float64(p.MACsPerNonce())
	procs := float64(runtime.GOMAXPROCS(0))
	b.ReportMetric(nps, "BENCH:poc_prove_nonces_per_s:nonces/s")
	b.ReportMetric(macs, "BENCH:poc_prove_int8_macs_per_s:MAC/s")
	b.ReportMetric(macs/procs, "BENCH:poc_prove_int8_macs_per_s_per_core:MAC/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkNaive measures the plain triple loop (the reference Compute) on
// one core, and the prover's speed-up over it on one worker (measured back
// to back, so a busy machine slows both alike).
func BenchmarkNaive(b *testing.B) {
	var naive float64
	for i := 0; i < b.N; i++ {
		naive = naiveRate(b)
	}
	p := DefaultParams()
	perCore := proveRate(b, 1, proveBenchNonces/4) * float64(p.MACsPerNonce())
	b.ReportMetric(naive, "BENCH:poc_naive_int8_macs_per_s:MAC/s")
	b.ReportMetric(perCore/naive, "BENCH:poc_prove_speedup_vs_naive_per_core:x")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkVerify measures one verification at the default params (model
// build, k = 40 recomputations, decode) and its cost next to proving an
// epoch at the smallest difficulty the chain allows: λ × MinDifficulty
// nonces at this machine's prover rate.
func BenchmarkVerify(b *testing.B) {
	f := defaultVerifyFixture(b)
	data, err := f.proof.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	const reps = 20
	var best time.Duration
	for i := 0; i < b.N; i++ {
		for r := 0; r < reps; r++ {
			start := time.Now()
			if err := VerifyBytes(f.p, f.seed, f.t, data, f.sample); err != nil {
				b.Fatal(err)
			}
			if d := time.Since(start); best == 0 || d < best {
				best = d
			}
		}
	}
	nps := proveRate(b, 0, proveBenchNonces)
	epoch := float64(f.p.ExpectedValid) * float64(f.p.MinDifficulty) / nps
	b.ReportMetric(float64(best.Microseconds())/1000, "BENCH:poc_verify_ms:ms")
	b.ReportMetric(best.Seconds()/epoch, "BENCH:poc_verify_to_prove_ratio:ratio")
	b.ReportMetric(float64(VerifyCost(f.p)), "BENCH:poc_verify_cost_macs:MAC")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkV2 measures work function v2 on the CPU at the default shape:
// the prover's rate beside v1's in the same run (v2 spends ~1 SHA-256
// compression a nonce where v1 spends ~14), and one verification, which
// must stay within 5 ms.
func BenchmarkV2(b *testing.B) {
	var v1, v2rate float64
	for i := 0; i < b.N; i++ {
		v1 = proveRateFor(b, DefaultParams(), 0, proveBenchNonces)
		v2rate = proveRateFor(b, v2(DefaultParams()), 0, proveBenchNonces)
	}
	verifyOnceV2.Do(func() { verifyFixV2 = verifyFixtureFor(v2(DefaultParams())) })
	f := verifyFixV2
	data, err := f.proof.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	var best time.Duration
	for r := 0; r < 20; r++ {
		start := time.Now()
		if err := VerifyBytes(f.p, f.seed, f.t, data, f.sample); err != nil {
			b.Fatal(err)
		}
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
	}
	b.ReportMetric(v2rate, "BENCH:poc_prove_v2_nonces_per_s:nonces/s")
	b.ReportMetric(v2rate/v1, "BENCH:poc_prove_v2_vs_v1:x")
	b.ReportMetric(float64(best.Microseconds())/1000, "BENCH:poc_verify_v2_ms:ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkModel measures weight generation alone at the default shape.
func BenchmarkModel(b *testing.B) {
	p := DefaultParams()
	start := time.Now()
	const reps = 10
	for i := 0; i < b.N; i++ {
		for r := 0; r < reps; r++ {
			if _, err := NewModel(p, testSeed(r)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(time.Since(start).Seconds()*1000/float64(reps*b.N), "BENCH:poc_model_build_ms:ms")
	b.ReportMetric(0, "ns/op")
}
