package keeper_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"cosmossdk.io/collections"
	"cosmossdk.io/log"
	"cosmossdk.io/math"
	"cosmossdk.io/store"
	"cosmossdk.io/store/metrics"
	storetypes "cosmossdk.io/store/types"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	dbm "github.com/cosmos/cosmos-db"
	addresscodec "github.com/cosmos/cosmos-sdk/codec/address"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	"github.com/cosmos/cosmos-sdk/runtime"
	sdk "github.com/cosmos/cosmos-sdk/types"
	moduletestutil "github.com/cosmos/cosmos-sdk/types/module/testutil"
	"github.com/cosmos/cosmos-sdk/x/auth"
	authkeeper "github.com/cosmos/cosmos-sdk/x/auth/keeper"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"
	"github.com/cosmos/cosmos-sdk/x/bank"
	bankkeeper "github.com/cosmos/cosmos-sdk/x/bank/keeper"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"
	gogoproto "github.com/cosmos/gogoproto/proto"

	"github.com/highway-compute/highway/chain/x/escrow/keeper"
	escrowmodule "github.com/highway-compute/highway/chain/x/escrow/module"
	"github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/poc"
)

const (
	chainID   = "highway-test"
	denom     = types.DefaultDenom
	mintName  = "mint"
	startFund = 1_000_000_000
)

// fixture is a real auth + bank + escrow state machine on an in-memory
// store: balances move through the real bank keeper.
type fixture struct {
	t        *testing.T
	ctx      sdk.Context
	k        keeper.Keeper
	ms       types.MsgServer
	qs       types.QueryServer
	bank     bankkeeper.BaseKeeper
	ak       authkeeper.AccountKeeper
	params   types.Params
	gov      string
	buyer    sdk.AccAddress
	provider sdk.AccAddress
	arbiter  sdk.AccAddress
	stranger sdk.AccAddress
	provKey  *secp256k1.PrivKey
	nonce    uint64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	keys := storetypes.NewKVStoreKeys(authtypes.StoreKey, banktypes.StoreKey, types.StoreKey)
	enc := moduletestutil.MakeTestEncodingConfig(auth.AppModuleBasic{}, bank.AppModuleBasic{}, escrowmodule.AppModule{})
	ctx := newContext(keys)
	gov := authtypes.NewModuleAddress(types.GovModuleName).String()
	ac := addresscodec.NewBech32Codec(sdk.GetConfig().GetBech32AccountAddrPrefix())
	maccPerms := map[string][]string{
		authtypes.FeeCollectorName: nil,
		types.ModuleName:           nil,
		mintName:                   {authtypes.Minter},
	}
	ak := authkeeper.NewAccountKeeper(enc.Codec, runtime.NewKVStoreService(keys[authtypes.StoreKey]), authtypes.ProtoBaseAccount,
		maccPerms, ac, sdk.GetConfig().GetBech32AccountAddrPrefix(), gov)
	blocked := map[string]bool{ak.GetModuleAddress(types.ModuleName).String(): true}
	bk := bankkeeper.NewBaseKeeper(enc.Codec, runtime.NewKVStoreService(keys[banktypes.StoreKey]), ak, blocked, gov, log.NewNopLogger())
	k := keeper.NewKeeper(enc.Codec, ac, runtime.NewKVStoreService(keys[types.StoreKey]), gov, bk, ak, authtypes.FeeCollectorName)

	f := &fixture{t: t, k: k, ms: keeper.NewMsgServerImpl(k), qs: keeper.NewQueryServerImpl(k), bank: bk, ak: ak, gov: gov}
	f.provKey = secp256k1.GenPrivKeyFromSecret([]byte("provider"))
	f.provider = sdk.AccAddress(f.provKey.PubKey().Address())
	f.buyer = sdk.AccAddress(secp256k1.GenPrivKeyFromSecret([]byte("buyer")).PubKey().Address())
	f.arbiter = sdk.AccAddress(secp256k1.GenPrivKeyFromSecret([]byte("arbiter")).PubKey().Address())
	f.stranger = sdk.AccAddress(secp256k1.GenPrivKeyFromSecret([]byte("stranger")).PubKey().Address())

	f.ctx = ctx.WithChainID(chainID).WithBlockHeight(1).WithBlockTime(time.Unix(1_800_000_000, 0).UTC()).WithHeaderHash(blockHash(1))
	f.params = types.DevParams()
	f.params.Arbiter = f.arbiter.String()
	f.params.FeeBps = 250 // 2.5 %, so fee arithmetic is visible in the tests
	gs := types.DefaultGenesis()
	gs.Params = f.params
	if err := k.InitGenesis(f.ctx, *gs); err != nil {
		t.Fatal(err)
	}
	for _, a := range []sdk.AccAddress{f.buyer, f.stranger} {
		f.fund(a, startFund)
	}
	return f
}

func blockHash(h int64) []byte {
	s := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("block"), uint64(h)))
	return s[:]
}

func (f *fixture) fund(a sdk.AccAddress, amount int64) {
	f.t.Helper()
	c := sdk.NewCoins(sdk.NewInt64Coin(denom, amount))
	if err := f.bank.MintCoins(f.ctx, mintName, c); err != nil {
		f.t.Fatal(err)
	}
	if err := f.bank.SendCoinsFromModuleToAccount(f.ctx, mintName, a, c); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) balance(a sdk.AccAddress) math.Int {
	return f.bank.GetBalance(f.ctx, a, denom).Amount
}

func (f *fixture) moduleBalance() math.Int {
	return f.balance(f.ak.GetModuleAddress(types.ModuleName))
}

func (f *fixture) feeBalance() math.Int {
	return f.balance(f.ak.GetModuleAddress(authtypes.FeeCollectorName))
}

// endBlock runs EndBlocker for the current height, then moves to the next
// block (one second later, with its own hash), checking the invariant.
func (f *fixture) endBlock() {
	f.t.Helper()
	f.ctx = f.ctx.WithEventManager(sdk.NewEventManager())
	if err := f.k.EndBlocker(f.ctx); err != nil {
		f.t.Fatalf("EndBlocker at %d: %v", f.ctx.BlockHeight(), err)
	}
	f.checkInvariant()
	h := f.ctx.BlockHeight() + 1
	f.ctx = f.ctx.WithBlockHeight(h).WithBlockTime(f.ctx.BlockTime().Add(time.Second)).WithHeaderHash(blockHash(h))
}

// advanceTo ends blocks until the current height is h.
func (f *fixture) advanceTo(h int64) {
	f.t.Helper()
	for f.ctx.BlockHeight() < h {
		f.endBlock()
	}
}

func (f *fixture) checkInvariant() {
	f.t.Helper()
	if msg, broken := f.k.CheckInvariant(f.ctx); broken {
		f.t.Fatalf("invariant broken at height %d: %s", f.ctx.BlockHeight(), msg)
	}
}

// quote returns a provider-signed quote for the buyer.
func (f *fixture) quote(gpus uint32, price int64, epochs uint64) types.Quote {
	f.t.Helper()
	f.nonce++
	q := types.Quote{
		Provider: f.provider.String(), Buyer: f.buyer.String(), GpuClass: "H100", Gpus: gpus,
		PricePerEpoch: math.NewInt(price), Epochs: epochs, ExpiresAt: f.ctx.BlockTime().Unix() + 300, Nonce: f.nonce,
	}
	return f.sign(q)
}

func (f *fixture) sign(q types.Quote) types.Quote {
	f.t.Helper()
	q, err := types.SignQuote(chainID, q, f.provKey)
	if err != nil {
		f.t.Fatal(err)
	}
	return q
}

// deliver runs a message with a fresh event manager and checks the
// invariant afterwards, as a block would.
func deliver[M any, R any](f *fixture, fn func(context.Context, M) (R, error), msg M) (R, error) {
	f.t.Helper()
	f.ctx = f.ctx.WithEventManager(sdk.NewEventManager())
	res, err := fn(f.ctx, msg)
	f.checkInvariant()
	return res, err
}

func (f *fixture) createLease(gpus uint32, price int64, epochs uint64) types.Lease {
	f.t.Helper()
	res, err := deliver(f, f.ms.CreateLease, &types.MsgCreateLease{Buyer: f.buyer.String(), Quote: f.quote(gpus, price, epochs)})
	if err != nil {
		f.t.Fatalf("create lease: %v", err)
	}
	return f.lease(res.LeaseId)
}

func (f *fixture) lease(id uint64) types.Lease {
	f.t.Helper()
	l, err := f.k.Leases.Get(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return l
}

// prove computes a real proof for the lease's epoch, as an agent would.
func (f *fixture) prove(l types.Lease, epoch uint64) []byte {
	f.t.Helper()
	res, err := f.qs.ProofTask(f.ctx, &types.QueryProofTaskRequest{LeaseId: l.Id, Epoch: epoch})
	if err != nil {
		f.t.Fatalf("proof task: %v", err)
	}
	return f.proveTask(res, 0)
}

func (f *fixture) proveTask(res *types.QueryProofTaskResponse, fabricate int) []byte {
	f.t.Helper()
	p := res.Poc.ToPoC()
	var seed poc.Seed
	copy(seed[:], res.Seed)
	target := poc.Target{Difficulty: res.Difficulty, Required: res.Required}
	// Enough nonces for λ + 200 expected valid ones: deterministic, and
	// comfortably above Required.
	limit := res.Difficulty * (p.ExpectedValid + 200)
	proof, err := poc.Prove(context.Background(), poc.CPUBackend{}, p, seed, target, poc.ProveOptions{Limit: limit})
	if err != nil {
		f.t.Fatal(err)
	}
	if uint64(len(proof.Nonces)) < res.Required {
		f.t.Fatalf("honest proof found %d < %d nonces", len(proof.Nonces), res.Required)
	}
	// Fabricate: replace every fabricate-th nonce by an invalid one just
	// above it (keeping the list sorted and unique).
	if fabricate > 0 {
		for i := 0; i+1 < len(proof.Nonces); i += fabricate {
			proof.Nonces[i] = proof.Nonces[i] + 1
			if proof.Nonces[i] == proof.Nonces[i+1] {
				proof.Nonces[i]--
			}
		}
	}
	bz, err := proof.MarshalBinary()
	if err != nil {
		f.t.Fatal(err)
	}
	return bz
}

func (f *fixture) submit(l types.Lease, epoch uint64, proof []byte) error {
	f.t.Helper()
	_, err := deliver(f, f.ms.SubmitProof, &types.MsgSubmitProof{Provider: l.Provider, LeaseId: l.Id, Epoch: epoch, Proof: proof})
	return err
}

// epochStart returns the first block that can carry the lease's epoch e's
// proof.
func epochStart(l types.Lease, e uint64) int64 {
	return l.StartHeight + int64(e*l.EpochBlocks) + 1
}

// windowLast returns the last block that can carry epoch e's proof at the
// fixture's 1 s blocks: the block whose time is the window's close.
func windowLast(l types.Lease, e uint64) int64 {
	return epochStart(l, e) + int64(l.ProofWorkSeconds) + int64(l.ProofGraceMs/1000)
}

// epochSettle returns the block in which epoch e is settled.
func epochSettle(l types.Lease, e uint64) int64 {
	return l.StartHeight + int64((e+1)*l.EpochBlocks) + int64(l.JudgeSpreadBlocks)
}

// pending returns the epoch's proof awaiting its verdict.
func (f *fixture) pending(l types.Lease, e uint64) types.PendingProof {
	f.t.Helper()
	p, err := f.k.PendingProofs.Get(f.ctx, collections.Join(l.Id, e))
	if err != nil {
		f.t.Fatalf("lease %d epoch %d: no pending proof: %v", l.Id, e, err)
	}
	return p
}

// judged ends blocks through the one that judges the epoch's pending
// proof and returns the verdict.
func (f *fixture) judged(l types.Lease, e uint64) types.EpochRecord {
	f.t.Helper()
	f.advanceTo(f.pending(l, e).JudgeHeight)
	f.endBlock()
	return f.record(l, e)
}

// record returns the epoch's verdict.
func (f *fixture) record(l types.Lease, e uint64) types.EpochRecord {
	f.t.Helper()
	r, err := f.k.Epochs.Get(f.ctx, collections.Join(l.Id, e))
	if err != nil {
		f.t.Fatalf("lease %d epoch %d: no verdict: %v", l.Id, e, err)
	}
	return r
}

// hasEvent reports whether the context's events include a typed event.
func (f *fixture) hasEvent(ev gogoproto.Message) bool {
	name := gogoproto.MessageName(ev)
	for _, e := range f.ctx.EventManager().Events() {
		if e.Type == name {
			return true
		}
	}
	return false
}

func (f *fixture) requireEvent(ev gogoproto.Message) {
	f.t.Helper()
	if !f.hasEvent(ev) {
		var got []string
		for _, e := range f.ctx.EventManager().Events() {
			got = append(got, e.Type)
		}
		f.t.Fatalf("event %s not emitted (got %v)", gogoproto.MessageName(ev), got)
	}
}

func eq(t *testing.T, what string, got, want math.Int) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s = %s, want %s", what, got, want)
	}
}

func storeGasMeter() storetypes.GasMeter { return storetypes.NewInfiniteGasMeter() }

// newContext mounts each store in its own namespace of one in-memory DB
// (the SDK's testutil shares one namespace, which breaks Commit), so
// benchmarks can commit block by block like a node.
func newContext(keys map[string]*storetypes.KVStoreKey) sdk.Context {
	cms := store.NewCommitMultiStore(dbm.NewMemDB(), log.NewNopLogger(), metrics.NewNoOpMetrics())
	for _, k := range keys {
		cms.MountStoreWithDB(k, storetypes.StoreTypeIAVL, nil)
	}
	if err := cms.LoadLatestVersion(); err != nil {
		panic(err)
	}
	return sdk.NewContext(cms, cmtproto.Header{}, false, log.NewNopLogger())
}
