package keeper_test

import (
	"testing"
	"time"

	"cosmossdk.io/collections"

	"cosmossdk.io/math"
	storetypes "cosmossdk.io/store/types"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/poc"
)

// BenchmarkSubmitProof measures one MsgSubmitProof at the production PoC
// network shape (256×4, k = 40): its gas and its wall time when it lands,
// and the judging block's verification of it. Only the difficulty is
// lowered so the benchmark can find a proof on a CPU in a second;
// verification cost does not depend on the difficulty.
func BenchmarkSubmitProof(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t)
	f.t = t
	p := f.params
	pp := poc.DefaultParams()
	pp.MinDifficulty = 16
	pp.H100NoncesPerSecond = 16 * pp.ExpectedValid / p.ProofWorkSeconds // difficulty ≈ 16
	p.Poc = types.PoCParamsFrom(pp)
	if err := f.k.Params.Set(f.ctx, p); err != nil {
		b.Fatal(err)
	}
	l := f.createLease(1, price, 2)
	f.advanceTo(epochStart(l, 0))
	proof := f.prove(l, 0)
	if t.Failed() {
		b.Fatal("setup failed")
	}
	var gas uint64
	var landed, judged time.Duration
	for i := 0; i < b.N; i++ {
		ctx, _ := f.ctx.CacheContext() // every iteration submits into the same state
		ctx = ctx.WithGasMeter(storeGasMeter()).WithEventManager(sdk.NewEventManager())
		start := time.Now()
		res, err := f.ms.SubmitProof(ctx, &types.MsgSubmitProof{Provider: l.Provider, LeaseId: l.Id, Epoch: 0, Proof: proof})
		if err != nil || res.Verdict != "judging" {
			b.Fatal(res, err)
		}
		landed += time.Since(start)
		gas = ctx.GasMeter().GasConsumed()
		// The judging block: the same state one or more blocks later.
		for h := ctx.BlockHeight(); h < res.JudgeHeight; h++ {
			if err := f.k.EndBlocker(ctx); err != nil {
				b.Fatal(err)
			}
			ctx = ctx.WithBlockHeight(h + 1).WithBlockTime(ctx.BlockTime().Add(time.Second)).WithHeaderHash(blockHash(h + 1))
		}
		start = time.Now()
		if err := f.k.EndBlocker(ctx); err != nil {
			b.Fatal(err)
		}
		judged += time.Since(start)
		if rec, err := f.k.Epochs.Get(ctx, joinEpoch(l.Id, 0)); err != nil || rec.Status != types.EPOCH_STATUS_CLEARED {
			b.Fatalf("verdict %+v, %v", rec, err)
		}
	}
	b.ReportMetric(float64(gas), "BENCH:chain_submit_proof_gas:gas")
	b.ReportMetric(float64(landed.Microseconds())/1000/float64(b.N), "BENCH:chain_submit_proof_ms:ms")
	b.ReportMetric(float64(judged.Microseconds())/1000/float64(b.N), "BENCH:chain_judge_proof_ms:ms")
}

// BenchmarkEndBlock10kLeases measures EndBlock with 10 000 active leases
// whose epochs are spread over 600-block epochs (a production shape: about
// 17 deadlines due per block), and the worst case where 10 000 deadlines
// fall in one block.
func BenchmarkEndBlock10kLeases(b *testing.B) {
	const leases = 10_000
	t := &testing.T{}
	f := newFixture(t)
	f.t = t
	p := f.params
	p.EpochBlocks = 600
	p.JudgeSpreadBlocks = 30
	if err := f.k.Params.Set(f.ctx, p); err != nil {
		b.Fatal(err)
	}
	f.fund(f.buyer, 1_000_000_000_000)
	perBlock := leases / int(p.EpochBlocks)
	created := 0
	for created < leases {
		for i := 0; i < perBlock+1 && created < leases; i++ {
			f.createLeaseFast(b, 1000, 10)
			created++
		}
		f.endBlockFast(b)
	}
	if t.Failed() {
		b.Fatal("setup failed")
	}
	// Move into the deadline period, then time a run of ordinary blocks.
	for f.ctx.BlockHeight() < 1+int64(p.EpochBlocks+p.JudgeSpreadBlocks) {
		f.endBlockFast(b)
	}
	const blocks = 50
	var spread time.Duration
	for i := 0; i < b.N; i++ {
		for j := 0; j < blocks; j++ {
			spread += f.endBlockFast(b)
		}
	}
	f.checkInvariant()
	b.ReportMetric(float64(spread.Microseconds())/1000/float64(b.N*blocks), "BENCH:chain_endblock_ms_10k_leases:ms")

	// Worst case: 10 000 leases created in one block all reach a deadline
	// together (each refunds its missed epoch). The budget spreads them
	// over the next blocks: the figure is the worst block of the burst.
	g := newFixture(t)
	g.t = t
	if err := g.k.Params.Set(g.ctx, p); err != nil { // 600-block epochs: the burst ends before the next falls due
		b.Fatal(err)
	}
	g.fund(g.buyer, 1_000_000_000_000)
	first := g.createLeaseFast(b, 1000, 10)
	for i := 1; i < leases; i++ {
		g.createLeaseFast(b, 1000, 10)
	}
	for g.ctx.BlockHeight() < epochSettle(first, 0) {
		g.endBlockFast(b)
	}
	var worst time.Duration
	burst := 0
	for ; burst == 0 || g.deadlinesDue() > 0; burst++ {
		if burst > leases/types.MaxSettlementsPerBlock+2 {
			b.Fatalf("the burst is not over after %d blocks", burst)
		}
		worst = max(worst, g.endBlockFast(b))
	}
	g.checkInvariant()
	if got := g.lease(first.Id + leases - 1); got.EpochsMissed != 1 || !got.Refunded.Equal(math.NewInt(1000)) {
		b.Fatalf("deadline not applied: %s", got.String())
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "BENCH:chain_endblock_ms_worst:ms")
	b.ReportMetric(float64(burst), "BENCH:chain_endblock_burst_blocks:blocks")
}

// deadlinesDue counts the settlements due by now that have not run.
func (f *fixture) deadlinesDue() int {
	n := 0
	_ = f.k.DeadlineDue.Walk(f.ctx, collections.NewPrefixUntilTripleRange[int64, uint64, uint64](f.ctx.BlockHeight()), func(collections.Triple[int64, uint64, uint64]) (bool, error) {
		n++
		return false, nil
	})
	return n
}

// createLeaseFast creates a lease without the per-message invariant walk
// (which is O(leases) and would make setup quadratic); the benchmark checks
// the invariant once at the end.
func (f *fixture) createLeaseFast(b testing.TB, price int64, epochs uint64) types.Lease {
	b.Helper()
	res, err := f.ms.CreateLease(f.ctx, &types.MsgCreateLease{Buyer: f.buyer.String(), Quote: f.quote(1, price, epochs)})
	if err != nil {
		b.Fatal(err)
	}
	return f.lease(res.LeaseId)
}

// endBlockFast ends the block as a node does: EndBlock on a cache of the
// committed state, written back and committed (so IAVL iterators see a
// committed tree plus one block of changes, not the whole history), and
// returns how long EndBlock itself took.
func (f *fixture) endBlockFast(b testing.TB) time.Duration {
	b.Helper()
	cms, ok := f.ctx.MultiStore().(storetypes.CommitMultiStore)
	if !ok {
		b.Fatal("fixture context has no commit multistore")
	}
	cacheCtx, write := f.ctx.CacheContext()
	cacheCtx = cacheCtx.WithEventManager(sdk.NewEventManager())
	start := time.Now()
	if err := f.k.EndBlocker(cacheCtx); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	write()
	cms.Commit()
	h := f.ctx.BlockHeight() + 1
	f.ctx = f.ctx.WithBlockHeight(h).WithBlockTime(f.ctx.BlockTime().Add(time.Second)).WithHeaderHash(blockHash(h))
	return took
}
