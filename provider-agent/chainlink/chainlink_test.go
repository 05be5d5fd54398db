//go:build !race

// Built without -race only: the in-process chain trips a known data race
// inside the SDK's store (see chain/network/network_test.go).

package chainlink_test

import (
	"context"
	"testing"
	"time"

	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/chain/app"
	"github.com/highway-compute/highway/chain/client"
	"github.com/highway-compute/highway/chain/network"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/provider-agent/chainlink"
	"github.com/highway-compute/highway/provider-agent/prover"
)

const chainID = "highway-agent-test"

// TestAgentProvesLeasesOnChain: the agent's chain link signs a quote,
// follows the chain for its provider's lease, proves each epoch with the
// local prover as its window opens, and submits; the chain clears them.
func TestAgentProvesLeasesOnChain(t *testing.T) {
	const mnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
	provKey, err := chainlink.KeyFromMnemonic(mnemonic)
	if err != nil {
		t.Fatal(err)
	}
	app.SetAddressConfig()
	buyer := network.Account{Name: "buyer", Key: secp256k1.GenPrivKeyFromSecret([]byte("agent-buyer")), Funds: math.NewInt(1_000_000_000)}
	provider := network.Account{Name: "provider", Key: provKey, Funds: math.NewInt(1_000_000_000)}
	params := escrowtypes.DevParams()
	params.EpochBlocks = 30
	params.ProofWorkSeconds = 1
	params.Arbiter = buyer.Address().String()
	_, c := network.StartForTest(t, network.Options{ChainID: chainID, TimeoutCommit: 100 * time.Millisecond, Escrow: params,
		Accounts: []network.Account{buyer, provider}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The quote is signed through the agent's QuoteSigner (protocol form).
	pq, err := chainlink.QuoteSigner{Key: provKey}.SignQuote(ctx, chainID, protocol.Quote{
		Provider: provider.Address().String(), Buyer: buyer.Address().String(), GPUClass: "H100", GPUs: 1,
		PricePerEpoch: "1000000", Epochs: 3, ExpiresAt: time.Now().Add(5 * time.Minute).Unix(), Nonce: 42,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (chainlink.QuoteSigner{Key: secp256k1.GenPrivKey()}).SignQuote(ctx, chainID, pq); err == nil {
		t.Fatal("signed a quote for another provider's address")
	}
	q := escrowtypes.Quote{Provider: pq.Provider, Buyer: pq.Buyer, GpuClass: pq.GPUClass, Gpus: pq.GPUs,
		PricePerEpoch: math.NewInt(1_000_000), Epochs: pq.Epochs, ExpiresAt: pq.ExpiresAt, Nonce: pq.Nonce,
		PubKey: pq.PubKey, Signature: pq.Signature}
	if _, err := c.Send(ctx, client.KeySigner{Key: buyer.Key}, &escrowtypes.MsgCreateLease{Buyer: buyer.Address().String(), Quote: q}); err != nil {
		t.Fatalf("create lease with the agent-signed quote: %v", err)
	}

	// The agent's proof loop, as agent.Agent runs it.
	f := &chainlink.Follower{Client: c, Provider: sdk.AccAddress(provKey.PubKey().Address())}
	sub := &chainlink.Submitter{Client: c, Key: provKey}
	local := &prover.Local{}
	cleared := 0
	for job := range f.Jobs(ctx) {
		res, err := local.Prove(ctx, job)
		if err != nil {
			t.Fatalf("prove epoch %d: %v", job.Epoch, err)
		}
		landed, err := sub.Submit(ctx, job, res)
		if err != nil || landed.Missed || landed.JudgeHeight == 0 {
			t.Fatalf("submit epoch %d: %+v, %v", job.Epoch, landed, err)
		}
		v, err := sub.Verdict(ctx, job, landed)
		if err != nil || !v.Cleared {
			t.Fatalf("epoch %d verdict: %+v, %v", job.Epoch, v, err)
		}
		cleared++
		if cleared == 3 {
			break
		}
	}
	lease, err := c.Lease(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if lease.EpochsCleared != 3 || lease.EpochsMissed != 0 {
		t.Fatalf("lease after the agent proved: cleared %d missed %d", lease.EpochsCleared, lease.EpochsMissed)
	}
}
