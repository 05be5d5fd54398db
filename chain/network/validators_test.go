//go:build !race

package network_test

import (
	"context"
	"reflect"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"cosmossdk.io/math"
	"github.com/cometbft/cometbft/node"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdknetwork "github.com/cosmos/cosmos-sdk/testutil/network"

	"github.com/highway-compute/highway/chain/app"
	"github.com/highway-compute/highway/chain/client"
	"github.com/highway-compute/highway/chain/network"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
)

// isolateValidator cuts one in-process validator off the network, as a
// crash or a partition would: its p2p switch stops, so it neither votes
// nor gossips, and its peers' redials find no one. (Stopping the whole
// node in-process is not an option: CometBFT's consensus reactor can
// still read the block store that the node's stop has just closed, and
// the panic takes the test binary with it.) The SDK's network exposes no
// per-validator control, so the node is reached through reflection: test
// code reaching into a test fixture.
func isolateValidator(t *testing.T, v *sdknetwork.Validator) {
	t.Helper()
	if err := cometNode(v).Switch().Stop(); err != nil {
		t.Fatalf("isolate validator %s: %v", v.Moniker, err)
	}
}

func cometNode(v *sdknetwork.Validator) *node.Node {
	f := reflect.ValueOf(v).Elem().FieldByName("tmNode")
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(*node.Node)
}

// quietBeforeCleanup stops every validator's p2p before the network's
// cleanup closes their stores, and waits out the consensus reactor's peer
// routines: one that was asleep between its queries wakes and reads the
// block store without checking again, and on a store its node's stop just
// closed it panics ("leveldb: closed") and takes the test binary with it
// (seen once on CI). Registered after the network's cleanup, it runs
// before it.
func quietBeforeCleanup(t *testing.T, net *sdknetwork.Network) {
	t.Cleanup(func() {
		for _, v := range net.Validators {
			_ = cometNode(v).Switch().Stop() // the cut-off one is stopped already
		}
		// A routine's pass sleeps at most four times between checks.
		time.Sleep(4*net.Validators[0].Ctx.Config.Consensus.PeerQueryMaj23SleepDuration + 250*time.Millisecond)
	})
}

// TestFourValidators runs a lease on a network of four validators of
// equal power. Every validator executes every proof's PoC verification
// and must reach the same app hash, or the chain halts: proofs clearing
// here shows the verifier is deterministic across app instances. One
// validator is then cut off mid-lease, as a crash would cut it: three of
// four (more than two thirds) keep committing blocks, and the next
// epochs are proven, cleared and paid exactly.
func TestFourValidators(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real four-validator network")
	}
	buyer := network.Account{Name: "buyer", Key: secp256k1.GenPrivKeyFromSecret([]byte("four-buyer")), Funds: math.NewInt(funds)}
	provider := network.Account{Name: "provider", Key: secp256k1.GenPrivKeyFromSecret([]byte("four-provider")), Funds: math.NewInt(funds)}
	app.SetAddressConfig()
	params := escrowtypes.DevParams()
	// Short epochs: with one validator down, a quarter of the rounds wait
	// out CometBFT's propose timeout (3 s), so every block counts.
	params.EpochBlocks = 10
	// The grace covers two of those timeouts and a loaded CI machine: at
	// 4 s, a proof landed 448 ms late on CI, behind the down validator's
	// turn to propose, and the test failed on timing, not on the chain.
	params.ProofGraceMs = 10_000
	params.ProofWorkSeconds = 1
	const fourChain = "highway-four"
	began := time.Now()
	net, c := network.StartForTest(t, network.Options{
		ChainID: fourChain, TimeoutCommit: 200 * time.Millisecond, Escrow: params,
		Accounts: []network.Account{buyer, provider}, Validators: 4,
	})
	if len(net.Validators) != 4 {
		t.Fatalf("%d validators", len(net.Validators))
	}
	quietBeforeCleanup(t, net)
	t.Logf("network of 4 up after %v", time.Since(began).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	buyerS, provS := client.KeySigner{Key: buyer.Key}, client.KeySigner{Key: provider.Key}
	const leaseEpochs = 3
	q := escrowtypes.Quote{
		Provider: provider.Address().String(), Buyer: buyer.Address().String(), GpuClass: "H100", Gpus: 1,
		PricePerEpoch: math.NewInt(price), Epochs: leaseEpochs, ExpiresAt: time.Now().Add(5 * time.Minute).Unix(), Nonce: 1,
	}
	q, err := escrowtypes.SignQuote(fourChain, q, provider.Key)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Send(ctx, buyerS, &escrowtypes.MsgCreateLease{Buyer: buyer.Address().String(), Quote: q})
	if err != nil {
		t.Fatalf("create lease: %v", err)
	}
	idAttr, _ := res.Attr("highway.escrow.v1.EventLeaseCreated", "lease_id")
	leaseID, err := strconv.ParseUint(idAttr, 10, 64)
	if err != nil {
		t.Fatalf("lease id %q: %v", idAttr, err)
	}
	proveEpoch := func(e uint64) {
		t.Helper()
		task := waitTask(ctx, t, c, leaseID, e)
		if _, err := c.Send(ctx, provS, &escrowtypes.MsgSubmitProof{Provider: provider.Address().String(), LeaseId: leaseID, Epoch: e, Proof: prove(t, task)}); err != nil {
			t.Fatalf("epoch %d proof: %v", e, err)
		}
	}
	proveEpoch(0)
	waitLease(ctx, t, c, leaseID, func(l escrowtypes.Lease) bool { return l.EpochsCleared == 1 })

	// Validator 3 crashes. The rest hold 75% of the power.
	h, err := net.LatestHeight()
	if err != nil {
		t.Fatal(err)
	}
	isolateValidator(t, net.Validators[3])
	t.Logf("validator 3 cut off at height %d, %v in", h, time.Since(began).Round(time.Millisecond))
	if _, err := net.WaitForHeightWithTimeout(h+5, 30*time.Second); err != nil {
		t.Fatalf("blocks stopped with one validator of four down: %v", err)
	}
	for e := uint64(1); e < leaseEpochs; e++ {
		proveEpoch(e)
	}
	lease := waitLease(ctx, t, c, leaseID, func(l escrowtypes.Lease) bool {
		return l.EpochsCleared == leaseEpochs && l.Pending.IsZero()
	})
	t.Logf("all epochs paid %v in", time.Since(began).Round(time.Millisecond))
	if lease.EpochsMissed != 0 || !lease.Refunded.IsZero() {
		t.Fatalf("lease after the crash: %s", lease.String())
	}
	fee := int64(price * 100 / 10_000)
	checkBalance(ctx, t, c, "provider", provider.Address(), funds+leaseEpochs*(price-fee))
	checkBalance(ctx, t, c, "buyer", buyer.Address(), funds-leaseEpochs*price)
}
