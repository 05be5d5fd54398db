//go:build !race

package network_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdk "github.com/cosmos/cosmos-sdk/types"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"

	"github.com/highway-compute/highway/chain/app"
	"github.com/highway-compute/highway/chain/client"
	"github.com/highway-compute/highway/chain/network"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
)

// TestConcurrentSignersPayOnce races four clients signing for one account
// round after round, each sending a distinct power of two, and checks that
// every round moved exactly the sum: a transfer applied twice or lost shows
// in the round's bits. Before the memo nonce, a resend after a delivery
// failure could repeat the failed transaction's bytes, read its old result
// back from the tx index and pay again at the next sequence: 7 of 400
// rounds of three clients paid twice on this machine under load.
// HIGHWAY_SIGNER_ROUNDS raises the count for a soak.
func TestConcurrentSignersPayOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real network")
	}
	rounds := 60
	if n, err := strconv.Atoi(os.Getenv("HIGHWAY_SIGNER_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	payer := network.Account{Name: "payer", Key: secp256k1.GenPrivKeyFromSecret([]byte("seq-payer")), Funds: math.NewInt(funds)}
	payee := network.Account{Name: "payee", Key: secp256k1.GenPrivKeyFromSecret([]byte("seq-payee")), Funds: math.NewInt(funds)}
	app.SetAddressConfig()
	net, c := network.StartForTest(t, network.Options{
		ChainID: chainID, TimeoutCommit: 100 * time.Millisecond, Escrow: escrowtypes.DevParams(),
		Accounts: []network.Account{payer, payee},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	clients := []*client.Client{c}
	for range 3 {
		cl, err := network.DialValidator(net, chainID)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		clients = append(clients, cl)
	}
	signer := client.KeySigner{Key: payer.Key}
	balance := func(addr sdk.AccAddress) int64 {
		b, err := c.Balance(ctx, addr, app.BondDenom)
		if err != nil {
			t.Fatal(err)
		}
		return b.Int64()
	}
	start, total := balance(payee.Address()), int64(0)
	hashes := map[string]bool{}
	for r := range rounds {
		before := balance(payee.Address())
		type sent struct {
			res *client.TxResult
			err error
		}
		done := make(chan sent, len(clients))
		for i, cl := range clients {
			msg := &banktypes.MsgSend{FromAddress: payer.Address().String(), ToAddress: payee.Address().String(),
				Amount: sdk.NewCoins(sdk.NewInt64Coin(app.BondDenom, 1<<i))}
			go func() { res, err := cl.Send(ctx, signer, msg); done <- sent{res, err} }()
		}
		for range clients {
			s := <-done
			if s.err != nil {
				t.Fatalf("round %d: %v", r, s.err)
			}
			if hashes[s.res.Hash] {
				t.Fatalf("round %d: hash %s reported twice", r, s.res.Hash)
			}
			hashes[s.res.Hash] = true
		}
		want := int64(1)<<len(clients) - 1
		if got := balance(payee.Address()) - before; got != want {
			t.Fatalf("round %d: payee received %d (%b), want %d: a transfer applied twice or lost", r, got, got, want)
		}
		total += want
	}
	// Gas is free on the test network: the payer lost exactly what the
	// payee gained, across all rounds.
	if got := balance(payee.Address()) - start; got != total {
		t.Fatalf("payee received %d in all, want %d", got, total)
	}
	if got := int64(funds) - balance(payer.Address()); got != total {
		t.Fatalf("payer paid %d in all, want %d", got, total)
	}
	var resends uint64
	for _, cl := range clients {
		resends += cl.Resends()
	}
	t.Logf("%d rounds × %d signers: every transfer applied once; %d resends after a delivery-time rejection", rounds, len(clients), resends)
}
