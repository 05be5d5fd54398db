//go:build !race

package main

import (
	"crypto/rand"
	"testing"
	"time"

	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/chain/app"
	chainclient "github.com/highway-compute/highway/chain/client"
	"github.com/highway-compute/highway/chain/network"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/handlers"
	"github.com/highway-compute/highway/poc"
)

// e2eChain is a chain for the loop: its faucet and arbiter, and the
// market settings that match its escrow parameters.
type e2eChain struct {
	client          *chainclient.Client
	faucet, arbiter network.Account
	params          escrowtypes.Params
	block           time.Duration
	walletKey       []byte
}

func startE2EChain(t testing.TB, block time.Duration, providers ...network.Account) *e2eChain {
	app.SetAddressConfig()
	faucet := network.Account{Name: "faucet", Key: secp256k1.GenPrivKey(), Funds: math.NewInt(1_000_000_000_000)}
	arbiter := network.Account{Name: "arbiter", Key: secp256k1.GenPrivKey(), Funds: math.NewInt(1_000_000)}
	params := escrowtypes.DevParams()
	params.EpochBlocks = 8
	params.ProofWorkSeconds = 1
	params.DisputeWindowBlocks = 3
	params.MaxMissedEpochs = 3
	params.Arbiter = arbiter.Address().String()
	accs := append([]network.Account{faucet, arbiter}, providers...)
	_, c := network.StartForTest(t, network.Options{ChainID: e2eChainID, TimeoutCommit: block, Escrow: params, Accounts: accs})
	walletKey := make([]byte, 32)
	_, _ = rand.Read(walletKey)
	return &e2eChain{client: c, faucet: faucet, arbiter: arbiter, params: params, block: block, walletKey: walletKey}
}

// tune sets a marketplace up on the chain, sending through chain (the
// chain's client, or a wrapper around it). Replicas share the wallet key.
func (ch *e2eChain) tune(chain broker.Chain) func(*Main) {
	return func(m *Main) {
		m.Config.DevMode = true
		// Every request and challenge in the log a failure prints: these
		// tests cross many processes' worth of parts.
		m.Config.LogLevel = "info"
		m.Agents = handlers.AgentConfig{HeartbeatInterval: 300 * time.Millisecond, OfflineMisses: 3, MaxPoll: 500 * time.Millisecond}
		m.Broker = broker.Config{Chain: chain, Faucet: chainclient.KeySigner{Key: ch.faucet.Key}, FaucetAmount: 100 * highway.UhwyPerHWY,
			Arbiter: chainclient.KeySigner{Key: ch.arbiter.Key}, WalletKey: ch.walletKey, VerifyParams: poc.DevParams(),
			VerifyWork: time.Second, EpochDuration: time.Duration(ch.params.EpochBlocks) * ch.block, ReservationTTL: 30 * time.Second,
			MaxOpenOrders: 8, // hostile_chain_test.go reaches it
			// Auto-extend looks every second and takes a lease ending
			// within 150 minutes: a one-hour lease extended by hand once is
			// due at once, and once more it is not.
			AutoExtendBefore: 150 * time.Minute, AutoExtendEvery: time.Second,
			// Alerts scan four times a second: a test waits for one.
			AlertEvery: 250 * time.Millisecond}
	}
}

// market is the loop with srv as its marketplace.
func (ch *e2eChain) market(t testing.TB, srv *Main) *e2eMarket {
	return &e2eMarket{t: t, chain: ch.client, srv: srv, faucet: math.NewInt(100_000_000), faucetSigner: chainclient.KeySigner{Key: ch.faucet.Key}}
}
