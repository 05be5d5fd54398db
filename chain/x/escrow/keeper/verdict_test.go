package keeper_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"cosmossdk.io/collections"
	"cosmossdk.io/math"
	storetypes "cosmossdk.io/store/types"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/chain/x/escrow/keeper"
	"github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/poc"
)

// task returns the epoch's proof task.
func (f *fixture) task(l types.Lease, e uint64) *types.QueryProofTaskResponse {
	f.t.Helper()
	res, err := f.qs.ProofTask(f.ctx, &types.QueryProofTaskRequest{LeaseId: l.Id, Epoch: e})
	if err != nil {
		f.t.Fatalf("proof task: %v", err)
	}
	return res
}

// eventAttr returns an attribute of the first event of the type emitted
// in the current context.
func (f *fixture) eventAttr(ev string, key string) string {
	for _, e := range f.ctx.EventManager().Events() {
		if e.Type != ev {
			continue
		}
		for _, a := range e.Attributes {
			if a.Key == key {
				return strings.Trim(a.Value, `"`)
			}
		}
	}
	return ""
}

// TestOneVerdictPerEpoch is the retry-grinding attack: a provider with a
// partly fabricated proof resubmits it every block, hoping one block's
// hash samples only its real nonces. The first proof is the epoch's one
// attempt; every later one is refused and changes nothing; the verdict is
// missed and the epoch refunded.
func TestOneVerdictPerEpoch(t *testing.T) {
	f := newFixture(t)
	l := f.createLease(1, price, 3)
	f.advanceTo(epochStart(l, 0))
	cheat := f.proveTask(f.task(l, 0), 2) // half the nonces fabricated
	honest := f.prove(l, 0)
	if err := f.submit(l, 0, cheat); err != nil {
		t.Fatalf("first attempt: %v", err)
	}
	judge := f.pending(l, 0).JudgeHeight
	tries := 0
	for h := f.ctx.BlockHeight(); h <= windowLast(l, 0); h++ {
		f.advanceTo(h)
		before := snapshot(f)
		for _, proof := range [][]byte{cheat, honest} {
			if err := f.submit(l, 0, proof); !errors.Is(err, types.ErrDuplicateProof) {
				t.Fatalf("resubmission at %d: err = %v, want ErrDuplicateProof", h, err)
			}
			tries++
		}
		before.requireUnchanged(t, f)
		if h == judge {
			f.endBlock()
			f.requireEvent(&types.EventEpochMissed{})
			if r := f.eventAttr("highway.escrow.v1.EventEpochMissed", "reason"); !strings.Contains(r, "proof rejected") || !strings.Contains(r, poc.ErrInvalidNonce.Error()) {
				t.Fatalf("missed reason %q", r)
			}
		}
	}
	rec := f.record(l, 0)
	if rec.Status != types.EPOCH_STATUS_MISSED || rec.SettledHeight != judge || !strings.Contains(rec.Reason, "proof rejected") {
		t.Fatalf("verdict = %+v", rec)
	}
	l = f.lease(l.Id)
	eq(t, "refunded at the verdict", l.Refunded, math.NewInt(price))
	eq(t, "buyer", f.balance(f.buyer), math.NewInt(startFund-2*price))
	if l.EpochsMissed != 1 || l.EpochsCleared != 0 || l.Status != types.LEASE_STATUS_ACTIVE {
		t.Fatalf("lease = %+v", l)
	}
	// Settlement counts the miss once and refunds nothing more.
	f.advanceTo(epochSettle(l, 0))
	f.endBlock()
	l = f.lease(l.Id)
	if l.MissedInRow != 1 || l.EpochsMissed != 1 || !l.Refunded.Equal(math.NewInt(price)) || l.NextEpoch != 1 {
		t.Fatalf("after settlement: %+v", l)
	}
	t.Logf("%d resubmissions refused", tries)
}

// TestMalformedProofIsTheOneAttempt: from the lease's provider, a proof
// that could never clear settles the epoch as missed at once, refunded,
// with the reason; the transaction itself succeeds (it was the attempt).
func TestMalformedProofIsTheOneAttempt(t *testing.T) {
	f := newFixture(t)
	f.params.MaxMissedEpochs = 10 // five misses in a row must not end the lease
	if err := f.k.Params.Set(f.ctx, f.params); err != nil {
		t.Fatal(err)
	}
	l := f.createLease(1, price, 6)
	f.advanceTo(epochStart(l, 0))
	task := f.task(l, 0)
	p := task.Poc.ToPoC()
	short := poc.Proof{Version: p.Version}
	for n := uint64(0); uint64(len(short.Nonces)) < task.Required-1; n++ {
		short.Nonces = append(short.Nonces, n)
	}
	shortBytes, _ := short.MarshalBinary()
	wrongVersion, _ := poc.Proof{Version: 9, Nonces: []uint64{1, 2}}.MarshalBinary()
	cases := []struct {
		name  string
		proof []byte
		want  error
	}{
		{"empty", nil, poc.ErrMalformed},
		{"garbage", []byte{0xff, 0xff, 0xff}, poc.ErrMalformed},
		{"trailing bytes", append(append([]byte{}, shortBytes...), 0), poc.ErrMalformed},
		{"wrong version", wrongVersion, poc.ErrWrongVersion},
		{"too few nonces", shortBytes, poc.ErrInsufficientWork},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := uint64(i)
			f.advanceTo(epochStart(l, e))
			buyer := f.balance(f.buyer)
			res, err := deliver(f, f.ms.SubmitProof, &types.MsgSubmitProof{Provider: l.Provider, LeaseId: l.Id, Epoch: e, Proof: tc.proof})
			if err != nil {
				t.Fatalf("the attempt itself failed: %v", err)
			}
			if res.Verdict != keeper.VerdictMissed || !strings.Contains(res.Reason, tc.want.Error()) || res.JudgeHeight != 0 {
				t.Fatalf("response %+v, want missed for %v", res, tc.want)
			}
			f.requireEvent(&types.EventEpochMissed{})
			eq(t, "buyer refunded at once", f.balance(f.buyer), buyer.Add(math.NewInt(price)))
			if rec := f.record(l, e); rec.Status != types.EPOCH_STATUS_MISSED || rec.Reason != res.Reason || rec.SubmittedHeight != f.ctx.BlockHeight() {
				t.Fatalf("record %+v", rec)
			}
			if err := f.submit(l, e, f.prove(l, e)); !errors.Is(err, types.ErrDuplicateProof) {
				t.Fatalf("a second attempt: %v", err)
			}
		})
	}
}

// TestProofWindowIsBlockTime: the window is the work seconds plus the
// grace, in block time from the first block that can carry the proof,
// whatever the block rate: slow blocks do not lengthen it, fast blocks do
// not shorten it. The epoch's last block bounds it too.
func TestProofWindowIsBlockTime(t *testing.T) {
	for _, tc := range []struct {
		name  string
		block time.Duration
	}{{"1 s blocks", time.Second}, {"5 s blocks", 5 * time.Second}, {"300 ms blocks", 300 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.params.EpochBlocks = 60
			if err := f.k.Params.Set(f.ctx, f.params); err != nil {
				t.Fatal(err)
			}
			l := f.createLease(1, price, 2)
			step := func() {
				f.ctx = f.ctx.WithEventManager(sdk.NewEventManager())
				if err := f.k.EndBlocker(f.ctx); err != nil {
					t.Fatal(err)
				}
				h := f.ctx.BlockHeight() + 1
				f.ctx = f.ctx.WithBlockHeight(h).WithBlockTime(f.ctx.BlockTime().Add(tc.block)).WithHeaderHash(blockHash(h))
			}
			for f.ctx.BlockHeight() < epochStart(l, 0) {
				step()
			}
			open := f.ctx.BlockTime()
			task := f.task(l, 0)
			width := time.Duration(l.ProofWorkSeconds)*time.Second + time.Duration(l.ProofGraceMs)*time.Millisecond
			if task.WindowOpenMs != open.UnixMilli() || task.WindowCloseMs != open.Add(width).UnixMilli() {
				t.Fatalf("task window %d..%d, want %d..%d", task.WindowOpenMs, task.WindowCloseMs, open.UnixMilli(), open.Add(width).UnixMilli())
			}
			proof := f.prove(l, 0)
			// The last block inside the window accepts the proof; the next
			// one refuses it.
			for !f.ctx.BlockTime().Add(tc.block).After(open.Add(width)) {
				step()
			}
			at := f.ctx
			f.ctx, _ = at.CacheContext()
			if err := f.submit(l, 0, proof); err != nil {
				t.Fatalf("in the window's last block (%s after it opened): %v", f.ctx.BlockTime().Sub(open), err)
			}
			f.ctx = at
			step()
			if err := f.submit(l, 0, proof); !errors.Is(err, types.ErrProofWindow) {
				t.Fatalf("in the next block (%s after it opened): %v", f.ctx.BlockTime().Sub(open), err)
			}
			// At the window's close to the millisecond, and 1 ms later.
			f.ctx = f.ctx.WithBlockTime(open.Add(width))
			if err := f.submit(l, 0, proof); err != nil {
				t.Fatalf("at the close: %v", err)
			}
			f.ctx = f.ctx.WithBlockTime(open.Add(width + time.Millisecond)).WithBlockHeight(f.ctx.BlockHeight() + 1)
			if err := f.submit(l, 0, proof); !errors.Is(err, types.ErrProofWindow) {
				t.Fatalf("1 ms past the close: %v", err)
			}
		})
	}
}

// TestCloseWhileJudging is the refund-twice attack: the buyer closes the
// lease in the blocks between a proof landing and its verdict. The proved
// epoch is not refunded: it stays in escrow until judged, and then goes to
// the provider (cleared) or back to the buyer (rejected), never both.
func TestCloseWhileJudging(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cheat   bool
		cleared bool
	}{{"valid proof", false, true}, {"fabricated proof", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			l := f.createLease(1, price, 4)
			f.advanceTo(epochStart(l, 0))
			proof := f.prove(l, 0)
			if tc.cheat {
				proof = f.proveTask(f.task(l, 0), 2)
			}
			if err := f.submit(l, 0, proof); err != nil {
				t.Fatal(err)
			}
			res, err := deliver(f, f.ms.CloseLease, &types.MsgCloseLease{Sender: f.buyer.String(), LeaseId: l.Id})
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "refunded on close", res.Refunded, math.NewInt(3*price))
			l = f.lease(l.Id)
			eq(t, "held for the verdict", l.Remaining, math.NewInt(price))
			rec := f.judged(l, 0)
			if got := rec.Status == types.EPOCH_STATUS_CLEARED; got != tc.cleared {
				t.Fatalf("verdict %+v", rec)
			}
			f.advanceTo(f.ctx.BlockHeight() + int64(l.DisputeWindowBlocks) + 1)
			l = f.lease(l.Id)
			fee := math.NewInt(price * 250 / 10_000)
			if tc.cleared {
				eq(t, "buyer", f.balance(f.buyer), math.NewInt(startFund-price))
				eq(t, "provider", f.balance(f.provider), math.NewInt(price).Sub(fee))
			} else {
				eq(t, "buyer", f.balance(f.buyer), math.NewInt(startFund))
				eq(t, "provider", f.balance(f.provider), math.ZeroInt())
			}
			eq(t, "module", f.moduleBalance(), math.ZeroInt())
			if !l.Held().IsZero() || l.Status != types.LEASE_STATUS_CLOSED {
				t.Fatalf("lease = %+v", l)
			}
		})
	}
}

// TestDisputeWhileJudging: a dispute opened while a proof waits for its
// verdict freezes that epoch's price with the rest; the verdict is still
// recorded (evidence for the arbiter) but moves no money; the arbiter's
// split is the only way out.
func TestDisputeWhileJudging(t *testing.T) {
	f := newFixture(t)
	l := f.createLease(1, price, 3)
	f.advanceTo(epochStart(l, 0))
	if err := f.submit(l, 0, f.prove(l, 0)); err != nil {
		t.Fatal(err)
	}
	res, err := deliver(f, f.ms.OpenDispute, &types.MsgOpenDispute{Buyer: f.buyer.String(), LeaseId: l.Id, Reason: "no GPU"})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "frozen", res.Frozen, math.NewInt(3*price))
	rec := f.judged(l, 0)
	if rec.Status != types.EPOCH_STATUS_FROZEN || rec.PayoutHeight != 0 {
		t.Fatalf("verdict under dispute = %+v", rec)
	}
	if got := f.eventAttr("highway.escrow.v1.EventProofAccepted", "payout_height"); got != "0" {
		t.Fatalf("payout height in the event = %q", got)
	}
	l = f.lease(l.Id)
	if l.EpochsCleared != 1 || !l.Frozen.Equal(math.NewInt(3*price)) || !l.Pending.IsZero() || !l.Remaining.IsZero() {
		t.Fatalf("lease = %+v", l)
	}
	out, err := deliver(f, f.ms.ResolveDispute, &types.MsgResolveDispute{Arbiter: f.arbiter.String(), LeaseId: l.Id, BuyerBps: 10_000})
	if err != nil || !out.ToBuyer.Equal(math.NewInt(3*price)) {
		t.Fatalf("resolve: %+v, %v", out, err)
	}
	eq(t, "module", f.moduleBalance(), math.ZeroInt())
}

// TestSampleSeedIsTheJudgingBlock pins the on-chain sampling a second
// implementation must reproduce: a proof landing in block h is judged in
// block h + 1 + JudgeOffset(hash(h), lease, epoch, spread), and the nonces
// recomputed are poc.Sample(hash of that block, seed, n, k). A proof with
// a quarter of its nonces fabricated passes exactly when that sample
// avoids them; over many block hashes, the prediction matches the chain
// every time.
func TestSampleSeedIsTheJudgingBlock(t *testing.T) {
	f := newFixture(t)
	f.params.Poc.SampleSize = 4 // so both verdicts occur in a few trials
	if err := f.k.Params.Set(f.ctx, f.params); err != nil {
		t.Fatal(err)
	}
	passed, failed := 0, 0
	for trial := 0; trial < 24; trial++ {
		l := f.createLease(1, price, 1)
		f.advanceTo(epochStart(l, 0))
		task := f.task(l, 0)
		proofBytes := f.proveTask(task, 4)
		var proof poc.Proof
		if err := proof.UnmarshalBinary(proofBytes); err != nil {
			t.Fatal(err)
		}
		var seed poc.Seed
		copy(seed[:], task.Seed)
		if err := f.submit(l, 0, proofBytes); err != nil {
			t.Fatal(err)
		}
		h := f.ctx.BlockHeight()
		judge := h + 1 + keeper.JudgeOffset(blockHash(h), l.Id, 0, l.JudgeSpreadBlocks)
		if got := f.pending(l, 0).JudgeHeight; got != judge {
			t.Fatalf("judge height %d, want %d", got, judge)
		}
		model, err := poc.NewModel(task.Poc.ToPoC(), seed)
		if err != nil {
			t.Fatal(err)
		}
		target := poc.Target{Difficulty: task.Difficulty, Required: task.Required}
		want := true
		for _, i := range poc.Sample(blockHash(judge), seed, len(proof.Nonces), int(task.Poc.SampleSize)) {
			want = want && target.Valid(model.Compute(proof.Nonces[i]))
		}
		rec := f.judged(l, 0)
		if got := rec.Status == types.EPOCH_STATUS_CLEARED; got != want {
			t.Fatalf("trial %d: verdict %s, predicted cleared=%v", trial, rec.Status, want)
		}
		if want {
			passed++
		} else {
			failed++
		}
	}
	if passed == 0 || failed == 0 {
		t.Fatalf("passed %d, failed %d: both verdicts should occur at k = 4, f = 25 %%", passed, failed)
	}
}

// TestJudgeSpread: proofs landing in one block are judged over the next
// judge_spread_blocks blocks, each within its settlement height.
func TestJudgeSpread(t *testing.T) {
	const spread = 8
	seen := map[int64]bool{}
	for lease := uint64(1); lease <= 400; lease++ {
		off := keeper.JudgeOffset(blockHash(7), lease, 3, spread)
		if off < 0 || off >= spread {
			t.Fatalf("offset %d outside [0, %d)", off, spread)
		}
		seen[off] = true
	}
	if len(seen) != spread {
		t.Fatalf("offsets used: %v", seen)
	}
	if keeper.JudgeOffset(blockHash(7), 1, 3, 1) != 0 {
		t.Fatal("a spread of 1 judges in the next block")
	}
}

// TestLeaseKeepsItsPoCTerms: a governance change of the PoC params (here
// λ and the class rate table) does not change what a live lease's epochs
// must prove: its proof task and its verdict use the terms it was created
// under; a lease created after the change uses the new ones.
func TestLeaseKeepsItsPoCTerms(t *testing.T) {
	f := newFixture(t)
	old := f.createLease(1, price, 2)
	f.advanceTo(epochStart(old, 0))
	before := f.task(old, 0)
	p := f.params
	p.Poc.ExpectedValid = 1500
	p.ClassRates = []types.ClassRate{{Class: "H100", MilliH100: 2000}}
	if _, err := deliver(f, f.ms.UpdateParams, &types.MsgUpdateParams{Authority: f.gov, Params: p}); err != nil {
		t.Fatal(err)
	}
	after := f.task(old, 0)
	if after.Difficulty != before.Difficulty || after.Required != before.Required || after.Poc.ExpectedValid != before.Poc.ExpectedValid {
		t.Fatalf("the live lease's task changed with params: %+v → %+v", before, after)
	}
	if err := f.submit(old, 0, f.proveTask(before, 0)); err != nil {
		t.Fatal(err)
	}
	if rec := f.judged(old, 0); rec.Status != types.EPOCH_STATUS_CLEARED {
		t.Fatalf("proof made to the lease's own terms: %+v", rec)
	}
	fresh := f.createLease(1, price, 1)
	f.advanceTo(epochStart(fresh, 0))
	if got := f.task(fresh, 0); got.Poc.ExpectedValid != 1500 || got.Required == before.Required {
		t.Fatalf("a new lease's task = %+v", got)
	}
}

// TestGovernanceArbitratesUntilNamed: with no arbiter in the params (the
// default), the params authority resolves disputes, so escrow is never
// frozen for good; anyone else is refused.
func TestGovernanceArbitratesUntilNamed(t *testing.T) {
	f := newFixture(t)
	f.params.Arbiter = ""
	if err := f.k.Params.Set(f.ctx, f.params); err != nil {
		t.Fatal(err)
	}
	l := f.createLease(1, price, 2)
	if _, err := deliver(f, f.ms.OpenDispute, &types.MsgOpenDispute{Buyer: f.buyer.String(), LeaseId: l.Id}); err != nil {
		t.Fatal(err)
	}
	if _, err := deliver(f, f.ms.ResolveDispute, &types.MsgResolveDispute{Arbiter: f.arbiter.String(), LeaseId: l.Id, BuyerBps: 10_000}); !errors.Is(err, types.ErrNotArbiter) {
		t.Fatalf("a stranger resolving: %v", err)
	}
	out, err := deliver(f, f.ms.ResolveDispute, &types.MsgResolveDispute{Arbiter: f.gov, LeaseId: l.Id, BuyerBps: 10_000})
	if err != nil || !out.ToBuyer.Equal(math.NewInt(2*price)) {
		t.Fatalf("governance resolving: %+v, %v", out, err)
	}
}

// TestLegacyLeaseSettlesOnce: a lease whose terms came from outside with
// no judge spread (state from before it existed) still gets one verdict
// per epoch: a proof landing in the epoch's last block is judged at the
// settlement, not refunded there and cleared a block later.
func TestLegacyLeaseSettlesOnce(t *testing.T) {
	f := newFixture(t)
	l := f.createLease(1, price, 2)
	// As the state would hold it: no spread, so epoch 0 settles in its
	// last block (its deadline entry moved there).
	if err := f.k.DeadlineDue.Remove(f.ctx, collections.Join3(epochSettle(l, 0), l.Id, uint64(0))); err != nil {
		t.Fatal(err)
	}
	l.JudgeSpreadBlocks = 0
	l.ProofGraceMs = 60_000 // the window's time does not bound it: the last block does
	if err := f.k.Leases.Set(f.ctx, l.Id, l); err != nil {
		t.Fatal(err)
	}
	last := epochStart(l, 1) - 1
	if err := f.k.DeadlineDue.Set(f.ctx, collections.Join3(last, l.Id, uint64(0))); err != nil {
		t.Fatal(err)
	}
	f.advanceTo(epochStart(l, 0))
	proof := f.prove(l, 0)
	f.advanceTo(last)
	if err := f.submit(l, 0, proof); err != nil {
		t.Fatal(err)
	}
	f.endBlock() // the settlement block: judged here
	rec := f.record(l, 0)
	l = f.lease(l.Id)
	if rec.Status != types.EPOCH_STATUS_CLEARED || !l.Refunded.IsZero() || l.EpochsCleared != 1 || l.EpochsMissed != 0 {
		t.Fatalf("verdict %+v, lease %+v", rec, l)
	}
	if _, err := f.k.PendingProofs.Get(f.ctx, joinEpoch(l.Id, 0)); err == nil {
		t.Fatal("the proof is still pending after its settlement")
	}
	f.advanceTo(f.ctx.BlockHeight() + 3) // its old judging block passes without a second verdict
	if l2 := f.lease(l.Id); !l2.Refunded.IsZero() || l2.EpochsCleared != 1 {
		t.Fatalf("after the old judging block: %+v", l2)
	}
}

// TestGenesisRefusesBrokenPendingState: a genesis whose active lease has
// no judge spread, or whose pending proof collides with a verdict or is
// due past its settlement, is refused with a clear error.
func TestGenesisRefusesBrokenPendingState(t *testing.T) {
	f := newFixture(t)
	l := f.createLease(1, price, 3)
	f.advanceTo(epochStart(l, 0))
	if err := f.submit(l, 0, f.prove(l, 0)); err != nil {
		t.Fatal(err)
	}
	gs, err := f.k.ExportGenesis(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(gs *types.GenesisState)
		want   string
	}{
		{"no spread", func(gs *types.GenesisState) { gs.Leases[0].JudgeSpreadBlocks = 0 }, "judge_spread_blocks"},
		{"pending and settled", func(gs *types.GenesisState) {
			gs.Epochs = append(gs.Epochs, types.EpochRecord{LeaseId: 1, Epoch: 0, Status: types.EPOCH_STATUS_MISSED, Amount: math.NewInt(price)})
		}, "already has one"},
		{"due past its settlement", func(gs *types.GenesisState) { gs.PendingProofs[0].JudgeHeight += 100 }, "judge height"},
		{"twice", func(gs *types.GenesisState) { gs.PendingProofs = append(gs.PendingProofs, gs.PendingProofs[0]) }, "already has one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g types.GenesisState
			bz, _ := gs.Marshal()
			if err := g.Unmarshal(bz); err != nil {
				t.Fatal(err)
			}
			tc.mutate(&g)
			if err := g.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCloseGasIgnoresProofBodies: the buyer's close counts the epochs under
// judgment without reading their proofs. Were it to read them, the
// provider would choose what the buyer's close costs (a proof may be
// MaxProofBytes), and a close simulated before a proof landed in the same
// block would run out of the gas it was given (a CI failure found this).
func TestCloseGasIgnoresProofBodies(t *testing.T) {
	closeGas := func(body int) storetypes.Gas {
		f := newFixture(t)
		l := f.createLease(1, price, 4)
		f.advanceTo(epochStart(l, 0))
		if err := f.submit(l, 0, f.prove(l, 0)); err != nil {
			t.Fatal(err)
		}
		if body > 0 {
			// The largest body the chain keeps, written in place.
			p := f.pending(l, 0)
			p.Proof = make([]byte, body)
			if err := f.k.PendingProofs.Set(f.ctx, joinEpoch(l.Id, 0), p); err != nil {
				t.Fatal(err)
			}
		}
		// The close alone on its own meter (deliver's invariant check
		// reads every proof and would count too).
		meter := storetypes.NewInfiniteGasMeter()
		res, err := f.ms.CloseLease(f.ctx.WithGasMeter(meter), &types.MsgCloseLease{Sender: f.buyer.String(), LeaseId: l.Id})
		if err != nil {
			t.Fatal(err)
		}
		f.checkInvariant()
		eq(t, "refunded on close", res.Refunded, math.NewInt(3*price))
		return meter.GasConsumed()
	}
	small, large := closeGas(0), closeGas(types.MaxProofBytes)
	if small != large {
		t.Fatalf("close gas depends on the pending proof's size: %d with the honest proof, %d with %d bytes", small, large, types.MaxProofBytes)
	}
	t.Logf("close gas with one epoch under judgment: %d", small)
}

// TestWorkFunctionVersionByParams: governance moves the work function to
// v2 through the params' version. A lease created after carries v2 (its
// proof task says so): a v1 proof of that task is missed as the wrong
// version, an honest v2 proof clears. A lease created before keeps v1, the
// version its provider quoted for, to its end.
func TestWorkFunctionVersionByParams(t *testing.T) {
	f := newFixture(t)
	p := f.params
	p.Poc.Version = poc.Version1 // a chain started before v2 was the default
	if _, err := deliver(f, f.ms.UpdateParams, &types.MsgUpdateParams{Authority: f.gov, Params: p}); err != nil {
		t.Fatalf("params to v1: %v", err)
	}
	before := f.createLease(1, price, 3)
	p.Poc.Version = poc.Version2
	if _, err := deliver(f, f.ms.UpdateParams, &types.MsgUpdateParams{Authority: f.gov, Params: p}); err != nil {
		t.Fatalf("params to v2: %v", err)
	}
	after := f.createLease(1, price, 3)
	f.advanceTo(max(epochStart(before, 0), epochStart(after, 0)))
	if v := f.task(before, 0).Poc.Version; v != poc.Version1 {
		t.Fatalf("the earlier lease's task is v%d", v)
	}
	task := f.task(after, 0)
	if task.Poc.Version != poc.Version2 {
		t.Fatalf("the later lease's task is v%d", task.Poc.Version)
	}

	if err := f.submit(before, 0, f.prove(before, 0)); err != nil {
		t.Fatalf("v1 proof for the v1 lease: %v", err)
	}
	asV1 := *task
	asV1.Poc.Version = poc.Version1
	res, err := deliver(f, f.ms.SubmitProof, &types.MsgSubmitProof{Provider: after.Provider, LeaseId: after.Id, Epoch: 0, Proof: f.proveTask(&asV1, 0)})
	if err != nil {
		t.Fatalf("the attempt itself failed: %v", err)
	}
	if res.Verdict != keeper.VerdictMissed || !strings.Contains(res.Reason, poc.ErrWrongVersion.Error()) {
		t.Fatalf("a v1 proof under v2: %+v", res)
	}
	if rec := f.judged(before, 0); rec.Status != types.EPOCH_STATUS_CLEARED && rec.Status != types.EPOCH_STATUS_PAID {
		t.Fatalf("the v1 lease's epoch: %+v", rec)
	}

	f.advanceTo(epochStart(after, 1))
	if err := f.submit(after, 1, f.prove(after, 1)); err != nil {
		t.Fatalf("v2 proof: %v", err)
	}
	if rec := f.judged(after, 1); rec.Status != types.EPOCH_STATUS_CLEARED && rec.Status != types.EPOCH_STATUS_PAID {
		t.Fatalf("the v2 lease's epoch: %+v", rec)
	}
	f.checkInvariant()
}
