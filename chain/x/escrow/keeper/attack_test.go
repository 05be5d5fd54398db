package keeper_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/poc"
)

// The cheats Proof-of-Compute exists to stop, played against the real
// keeper with the default timing (60 s work window, the default grace,
// 1 s blocks, verdicts spread over 30 blocks) and the default statistics
// (λ = 3000, slack 9 %, k = 40), each over many leases with their own
// seeds and block hashes:
//
//   - honest: proves for the work window, lands as late as measured on
//     the real chain (measuredLateness);
//   - fabricate f: a quarter, a tenth or a twentieth of its nonces are
//     made up, and it resubmits every block until its window closes;
//   - slow ρ: a machine at 80 % or 90 % of its class rate proves from the
//     moment the seed exists until the last moment the chain still takes
//     its proof (the acceptance window's last block, sent a block
//     interval before it is proposed);
//   - replay: another lease's valid proof for the same provider.
//
// Only the work network is shrunk (32 wide, 1 layer, difficulty 2) so a
// proof costs milliseconds: every proof is made of real nonces the real
// verifier recomputes. At production difficulty (D ≈ 10⁷–10⁹) the number
// of valid nonces an epoch's work yields is Poisson with mean λ × rate ×
// time / window; at D = 2 it would not be (the variance halves), so each
// machine's count is drawn from that Poisson law (seeded) and its proof
// carries that many real valid nonces. A fabricated nonce is one that
// recomputes invalid, as almost every unevaluated nonce does at
// production difficulty.

// measuredLateness are the honest agents' arrival times past the work
// window, in ms: the time of the block that carried the proof − (window
// open + work seconds). From a 30-minute `make dev` run (real highwayd,
// 1 s blocks, the four demo machines leased and proving on this 2-core
// machine, two busy loops besides for 25 of the 30 minutes; 690 proofs;
// docs/poc.md §11): the 0th, 5th, …, 100th percentiles, plus the 99th and
// 99.9th. Drawing from these overweights the late tail.
var measuredLateness = []int64{-993, -990, -987, -985, -984, -983, -982, -982, -981, -980, -979, -978, -977, -975, -973, -971,
	-966, -957, -862, 66, 302, 129, 230}

// attackParams are the default escrow timing with the small work network.
func attackParams() types.Params {
	p := types.DefaultParams()
	p.EpochBlocks = 100 // only needs to hold the 54 s window at 1 s blocks
	p.DisputeWindowBlocks = 2
	p.MaxEpochsPerLease = 10
	pp := poc.DefaultParams()
	pp.Dim, pp.Layers, pp.MinDifficulty = 32, 1, 2
	pp.H100NoncesPerSecond = (2*pp.ExpectedValid + p.ProofWorkSeconds - 1) / p.ProofWorkSeconds // D = 2 for one H100
	p.Poc = types.PoCParamsFrom(pp)
	return p
}

// attack is one cheat (or honesty) to measure.
type attack struct {
	name       string
	speed      float64 // the machine's rate relative to its class
	fabricate  float64 // fraction of made-up nonces
	slow       bool    // proves through the whole acceptance window
	replay     bool
	resubmit   bool
	wantPasses bool // the rate reported is of passes (cheats) or misses (honest)
}

var attacks = []attack{
	{name: "honest", speed: 1},
	{name: "f5", speed: 1, fabricate: 0.05, resubmit: true, wantPasses: true},
	{name: "f10", speed: 1, fabricate: 0.10, resubmit: true, wantPasses: true},
	{name: "f25", speed: 1, fabricate: 0.25, resubmit: true, wantPasses: true},
	{name: "slow80", speed: 0.8, slow: true, wantPasses: true},
	{name: "slow90", speed: 0.9, slow: true, wantPasses: true},
	{name: "replay", speed: 1, replay: true, wantPasses: true},
}

// attackResult counts a run.
type attackResult struct {
	trials, cleared, missed, resubmissions int
}

// rate is the reported rate: passes for a cheat, misses for honesty.
func (r attackResult) rate(a attack) float64 {
	if a.wantPasses {
		return float64(r.cleared) / float64(r.trials)
	}
	return float64(r.missed) / float64(r.trials)
}

// runAttack plays the attack for trials epochs, rounds of up to batch
// one-epoch leases created in the same block.
func runAttack(tb testing.TB, a attack, trials, batch int, seed uint64) attackResult {
	t, ok := tb.(*testing.T)
	if !ok {
		t = &testing.T{} // a benchmark: the fixture's checks are the fatal ones below
	}
	f := newFixture(t)
	f.params = attackParams()
	f.params.Arbiter = f.arbiter.String()
	if err := f.k.Params.Set(f.ctx, f.params); err != nil {
		tb.Fatal(err)
	}
	f.fund(f.buyer, int64(trials)*1000)
	rng := rand.New(rand.NewPCG(seed, uint64(len(a.name))))
	salt := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", a.name, seed)))
	step := func() {
		f.ctx = f.ctx.WithEventManager(sdk.NewEventManager())
		if err := f.k.EndBlocker(f.ctx); err != nil {
			tb.Fatalf("EndBlocker at %d: %v", f.ctx.BlockHeight(), err)
		}
		h := f.ctx.BlockHeight() + 1
		hash := sha256.Sum256(binary.BigEndian.AppendUint64(salt[:], uint64(h)))
		f.ctx = f.ctx.WithBlockHeight(h).WithBlockTime(f.ctx.BlockTime().Add(time.Second)).WithHeaderHash(hash[:])
	}
	var res attackResult
	pp := f.params.Poc.ToPoC()
	work := time.Duration(f.params.ProofWorkSeconds) * time.Second
	grace := time.Duration(f.params.ProofGraceMs) * time.Millisecond
	for res.trials < trials {
		n := min(batch, trials-res.trials)
		if a.replay {
			n++ // leases[0] proves honestly; the others replay its proof
		}
		leases := make([]types.Lease, n)
		for i := range leases {
			r, err := f.ms.CreateLease(f.ctx, &types.MsgCreateLease{Buyer: f.buyer.String(), Quote: f.quote(1, 1000, 1)})
			if err != nil {
				tb.Fatal(err)
			}
			leases[i] = f.lease(r.LeaseId)
		}
		step() // the seed block is committed; the window opens with this block
		open := f.ctx.BlockTime()
		last := open.Add(work + grace) // the window's close
		// plan: the height each lease's proof lands at, and the proof.
		type plan struct {
			at    int64
			proof []byte
		}
		plans := make([]plan, n)
		var replayed []byte
		for i, l := range leases {
			task := f.task(l, 0)
			var es poc.Seed
			copy(es[:], task.Seed)
			target := poc.Target{Difficulty: task.Difficulty, Required: task.Required}
			proving := work
			var landAt time.Time
			switch {
			case a.slow:
				// From the seed to the last block the chain accepts, plus
				// the block interval before that block is proposed.
				lastBlock := open.Add(last.Sub(open).Truncate(time.Second))
				proving = lastBlock.Sub(open) + time.Second
				landAt = lastBlock
			default:
				late := time.Duration(measuredLateness[rng.IntN(len(measuredLateness))]) * time.Millisecond
				landAt = open.Add(work + late)
			}
			// Blocks are 1 s apart from open: land in the first block at
			// or after landAt.
			blocks := int64((landAt.Sub(open) + time.Second - 1) / time.Second)
			plans[i].at = f.ctx.BlockHeight() + max(blocks, 0)
			mean := float64(pp.ExpectedValid) * a.speed * proving.Seconds() / work.Seconds()
			count := poissonDraw(rng, mean)
			switch {
			case a.replay && i > 0:
				plans[i].proof = replayed
				continue
			case a.fabricate > 0:
				plans[i].proof = fabricatedProof(tb, pp, es, target, a.fabricate)
			default:
				plans[i].proof = realProof(tb, pp, es, target, count)
			}
			if a.replay {
				replayed = plans[i].proof
			}
		}
		settle := epochSettle(leases[0], 0)
		for f.ctx.BlockHeight() <= settle {
			h := f.ctx.BlockHeight()
			for i, l := range leases {
				msg := &types.MsgSubmitProof{Provider: l.Provider, LeaseId: l.Id, Epoch: 0, Proof: plans[i].proof}
				switch {
				case h == plans[i].at:
					if _, err := f.ms.SubmitProof(f.ctx, msg); err != nil && !errors.Is(err, types.ErrProofWindow) {
						tb.Fatalf("%s: lease %d: %v", a.name, l.Id, err)
					}
				case a.resubmit && h > plans[i].at && h <= leases[i].StartHeight+int64(leases[i].EpochBlocks):
					// Grinding for a kinder block hash, every block of the
					// epoch: refused, every time (a second proof while the
					// window is open, a late one after).
					want := types.ErrDuplicateProof
					if f.ctx.BlockTime().After(last) {
						want = types.ErrProofWindow
					}
					if _, err := f.ms.SubmitProof(f.ctx, msg); !errors.Is(err, want) {
						tb.Fatalf("%s: resubmission at %d: %v, want %v", a.name, h, err, want)
					}
					res.resubmissions++
				}
			}
			step()
		}
		if msg, broken := f.k.CheckInvariant(f.ctx); broken {
			tb.Fatalf("%s: invariant: %s", a.name, msg)
		}
		for i, l := range leases {
			if a.replay && i == 0 {
				continue
			}
			rec := f.record(l, 0)
			if rec.Status == types.EPOCH_STATUS_MISSED {
				res.missed++
			} else {
				res.cleared++
			}
			res.trials++
		}
	}
	if t.Failed() {
		tb.Fatalf("%s: the fixture failed", a.name)
	}
	return res
}

// realProof is count real valid nonces for the seed: the first count the
// prover finds from 0.
func realProof(tb testing.TB, pp poc.Params, seed poc.Seed, target poc.Target, count uint64) []byte {
	pr, err := poc.Prove(context.Background(), poc.CPUBackend{}, pp, seed, target,
		poc.ProveOptions{Limit: 2*count*target.Difficulty + 4096})
	if err != nil {
		tb.Fatal(err)
	}
	if uint64(len(pr.Nonces)) < count {
		tb.Fatalf("found %d of %d nonces", len(pr.Nonces), count)
	}
	pr.Nonces = pr.Nonces[:count]
	bz, err := pr.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return bz
}

// fabricatedProof is exactly Required nonces, a fraction frac of them
// made up (nonces that recompute invalid), spread evenly.
func fabricatedProof(tb testing.TB, pp poc.Params, seed poc.Seed, target poc.Target, frac float64) []byte {
	m, err := poc.NewModel(pp, seed)
	if err != nil {
		tb.Fatal(err)
	}
	n := int(target.Required)
	fakes := int(math.Round(frac * float64(n)))
	pr := poc.Proof{Version: pp.Version}
	made := 0
	const batch = 4096
	nonces, digests := make([]uint64, batch), make([][32]byte, batch)
	for base := uint64(0); len(pr.Nonces) < n; base += batch {
		for i := range nonces {
			nonces[i] = base + uint64(i)
		}
		if err := (poc.CPUBackend{}).Evaluate(context.Background(), m, nonces, digests); err != nil {
			tb.Fatal(err)
		}
		for i, v := range nonces {
			if len(pr.Nonces) == n {
				break
			}
			// Fake the next slot when the running share of fakes is behind.
			wantFake := made < fakes && made*n < fakes*(len(pr.Nonces)+1)
			if target.Valid(digests[i]) != wantFake {
				pr.Nonces = append(pr.Nonces, v)
				if wantFake {
					made++
				}
			}
		}
	}
	bz, err := pr.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return bz
}

// poissonDraw draws from Poisson(mean) by inverting its CDF.
func poissonDraw(rng *rand.Rand, mean float64) uint64 {
	u := rng.Float64()
	lo := int(math.Max(0, mean-12*math.Sqrt(mean)-20))
	var cdf float64
	for k := lo; ; k++ {
		lg, _ := math.Lgamma(float64(k) + 1)
		cdf += math.Exp(float64(k)*math.Log(mean) - mean - lg)
		if cdf >= u || k > int(mean+12*math.Sqrt(mean)+20) {
			return uint64(k)
		}
	}
}

// TestOnChainAttacks runs every attack on a few hundred epochs: the
// one-verdict rule, the time window and sampling from the judging block
// hold, and the rates are in the range `make bench` measures precisely
// (BenchmarkOnChainAttacks).
func TestOnChainAttacks(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	// Limits on 200 epochs: none may slip for honesty, 25 % fabrication,
	// an 80 % machine or a replay; 5 % and 10 % fabrication pass at about
	// 0.13 and 0.014 (binomial tails allowed); a 90 % machine is within the
	// slack and mostly passes (no limit).
	limits := map[string]int{"honest": 0, "f5": 45, "f10": 9, "f25": 0, "slow80": 0, "slow90": 200, "replay": 0}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			const trials = 200
			res := runAttack(t, a, trials, trials, 1)
			bad := res.missed
			if a.wantPasses {
				bad = res.cleared
			}
			t.Logf("%s: %d trials, %d cleared, %d missed, %d resubmissions refused", a.name, res.trials, res.cleared, res.missed, res.resubmissions)
			if bad > limits[a.name] {
				t.Fatalf("%s: %d of %d, limit %d", a.name, bad, trials, limits[a.name])
			}
			if a.resubmit && res.resubmissions == 0 {
				t.Fatal("never resubmitted")
			}
		})
	}
}

// BenchmarkOnChainAttacks measures each attack's per-epoch rate on the
// real keeper: BENCH poc_onchain_<name>_pass_rate (cheats) and
// poc_onchain_honest_miss_rate.
func BenchmarkOnChainAttacks(b *testing.B) {
	trials := map[string]int{"honest": 10_000, "f5": 2000, "f10": 10_000, "f25": 10_000, "slow80": 10_000, "slow90": 2000, "replay": 1000}
	for i := 0; i < b.N; i++ {
		for _, a := range attacks {
			res := runAttack(b, a, trials[a.name], 1000, 7)
			metric := "poc_onchain_" + a.name + "_pass_rate"
			if !a.wantPasses {
				metric = "poc_onchain_honest_miss_rate"
			}
			b.ReportMetric(res.rate(a), "BENCH:"+metric+":fraction")
		}
	}
}
