package keeper_test

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto/ed25519"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/highway-compute/highway/poc"
)

// The proposer's advantage (docs/poc.md §11). A provider that also runs a
// validator can grind the hash of a block it proposes: every transaction
// order, every subset of the votes it includes, gives another hash. If it
// proposes the block that judges its own proof, it can try hashes until
// the sample misses its fabricated nonces. Two things bound that:
//
//   - control: it must propose the judging block h + 1 + x, where x comes
//     from the hash of block h that carried the proof. Measured here with
//     CometBFT's own proposer rotation over a realistic validator set and
//     the attacker's best timing.
//   - grinding rate: each variant costs a header hash and a sample;
//     measured here with CometBFT's header hashing and poc.Sample.

// proposerSchedule returns the proposer index at each of n heights for a
// validator set of 100 with a long-tailed power distribution (the largest
// about 6 %, like public Cosmos chains) plus an attacker (index 0) holding
// share of the power.
func proposerSchedule(tb testing.TB, share float64, n int) []int {
	const others = 100
	weights := make([]float64, others)
	var sum float64
	for i := range weights {
		weights[i] = 1 / float64(i+12)
		sum += weights[i]
	}
	total := int64(1_000_000)
	var vals []*cmttypes.Validator
	addrIdx := map[string]int{}
	add := func(i int, power int64) {
		seed := sha256.Sum256([]byte(fmt.Sprint("validator ", i)))
		v := cmttypes.NewValidator(ed25519.GenPrivKeyFromSecret(seed[:]).PubKey(), power)
		vals = append(vals, v)
		addrIdx[v.Address.String()] = i
	}
	add(0, int64(share*float64(total)))
	for i, w := range weights {
		add(i+1, int64((1-share)*float64(total)*w/sum))
	}
	set := cmttypes.NewValidatorSet(vals)
	out := make([]int, n)
	for h := range out {
		out[h] = addrIdx[set.GetProposer().Address.String()]
		set.IncrementProposerPriority(1)
	}
	return out
}

// controlRate is the share of epochs in which the attacker (index 0) can
// make itself the proposer of its proof's judging block, timing its proof
// as well as it can: for each epoch it picks the landing block h in the
// window that maximises its chance. If it proposes h itself, it grinds
// h's hash to pick any offset, so it controls the judging block when it
// proposes any of the spread blocks after h; otherwise the offset is
// uniform and its chance is the share of those blocks it proposes.
func controlRate(schedule []int, window, spread, epochs int) float64 {
	var sum float64
	stride := (len(schedule) - window - spread - 1) / epochs
	for e := 0; e < epochs; e++ {
		start := e * stride
		best := 0.0
		for h := start + 1; h <= start+window; h++ {
			own := 0
			for j := h + 1; j <= h+spread; j++ {
				if schedule[j] == 0 {
					own++
				}
			}
			p := float64(own) / float64(spread)
			if schedule[h] == 0 && own > 0 {
				p = 1
			}
			best = max(best, p)
		}
		sum += best
	}
	return sum / float64(epochs)
}

// TestProposerControl: with the default spread, a validator with 1 % of
// the voting power controls the judging block of about 1/30 of its epochs
// (CometBFT's rotation spaces its turns about 1/share apart, so it rarely
// has two within the spread); without the spread it controls every epoch
// in which it has a turn during the proof window.
func TestProposerControl(t *testing.T) {
	const window, spread, epochs = 62, 30, 400
	for _, tc := range []struct {
		share              float64
		maxSpread, minNone float64
	}{
		{0.005, 0.02, 0.25},
		{0.01, 0.04, 0.5},
		{0.03, 0.08, 0.9},
	} {
		s := proposerSchedule(t, tc.share, epochs*600)
		withSpread, none := controlRate(s, window, spread, epochs), controlRate(s, window, 1, epochs)
		t.Logf("share %.1f %%: control with spread %d %.4f, without %.4f", 100*tc.share, spread, withSpread, none)
		if withSpread > tc.maxSpread+1e-9 || none < tc.minNone {
			t.Fatalf("share %v: control %v with the spread (max %v), %v without (min %v)", tc.share, withSpread, tc.maxSpread, none, tc.minNone)
		}
	}
}

// grindRate is how many judging-block variants one core can try per
// second: a CometBFT header hash with a changed data hash (another
// transaction order) and the sample it would draw, checked against the
// fabricated set.
func grindRate(d time.Duration) float64 {
	h := cmttypes.Header{ChainID: "highway-1", Height: 1_000_000, Time: time.Unix(1_800_000_000, 0)}
	fill := func(b []byte, tag string) []byte { s := sha256.Sum256([]byte(tag)); return s[:] }
	h.LastCommitHash, h.ValidatorsHash, h.NextValidatorsHash = fill(nil, "c"), fill(nil, "v"), fill(nil, "n")
	h.ConsensusHash, h.AppHash, h.LastResultsHash, h.EvidenceHash = fill(nil, "k"), fill(nil, "a"), fill(nil, "r"), fill(nil, "e")
	h.ProposerAddress = fill(nil, "p")[:20]
	h.LastBlockID.Hash = fill(nil, "l")
	h.LastBlockID.PartSetHeader.Hash = fill(nil, "ps")
	h.LastBlockID.PartSetHeader.Total = 1
	seed := poc.Seed{7}
	fake := make([]bool, 3000)
	for i := 0; i < len(fake); i += 4 {
		fake[i] = true // 25 % fabricated
	}
	data := make([]byte, 32)
	n, passes := 0, 0
	start := time.Now()
	for time.Since(start) < d {
		for i := 0; i < 64; i++ {
			binary.BigEndian.PutUint64(data, uint64(n))
			h.DataHash = data
			ok := true
			for _, j := range poc.Sample(h.Hash(), seed, len(fake), 40) {
				if fake[j] {
					ok = false
					break
				}
			}
			if ok {
				passes++
			}
			n++
		}
	}
	_ = passes
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkProposerAdvantage reports the proposer's advantage: its control
// of the judging block at 1 % of the voting power, with the default spread
// and without, and the grinding rate of one core.
func BenchmarkProposerAdvantage(b *testing.B) {
	const window, spread, epochs = 62, 30, 1000
	for i := 0; i < b.N; i++ {
		s := proposerSchedule(b, 0.01, epochs*600)
		b.ReportMetric(controlRate(s, window, spread, epochs), "BENCH:poc_onchain_proposer_control_1pct:fraction")
		b.ReportMetric(controlRate(s, window, 1, epochs), "BENCH:poc_onchain_proposer_control_1pct_nospread:fraction")
		b.ReportMetric(grindRate(2*time.Second), "BENCH:poc_onchain_grind_variants_per_s_core:variants/s")
	}
}
