//go:build !race

// Built without -race for the reason chain/network/network_test.go gives.

package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdk "github.com/cosmos/cosmos-sdk/types"
	sdkerrors "github.com/cosmos/cosmos-sdk/types/errors"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"

	"github.com/highway-compute/highway/chain/app"
	"github.com/highway-compute/highway/chain/client"
	"github.com/highway-compute/highway/chain/network"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
)

// TestSendSettlesEveryOutcome: a transaction whose wait ran out is
// followed past its timeout height, so Send and settle report what
// happened to it (committed, or never to be) instead of an error that
// leaves a retry to guess.
func TestSendSettlesEveryOutcome(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real network")
	}
	const chainID = "highway-settle-test"
	payer := network.Account{Name: "payer", Key: secp256k1.GenPrivKeyFromSecret([]byte("settle-payer")), Funds: math.NewInt(1_000_000)}
	payee := network.Account{Name: "payee", Key: secp256k1.GenPrivKeyFromSecret([]byte("settle-payee")), Funds: math.NewInt(1_000_000)}
	app.SetAddressConfig()
	net, c := network.StartForTest(t, network.Options{
		ChainID: chainID, TimeoutCommit: 100 * time.Millisecond, Escrow: escrowtypes.DevParams(),
		Accounts: []network.Account{payer, payee},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	signer := client.KeySigner{Key: payer.Key}
	balance := func() int64 {
		b, err := c.Balance(ctx, payee.Address(), app.BondDenom)
		if err != nil {
			t.Fatal(err)
		}
		return b.Int64()
	}
	send := func(cl *client.Client, amount int64) (*client.TxResult, error) {
		return cl.Send(ctx, signer, &banktypes.MsgSend{FromAddress: payer.Address().String(), ToAddress: payee.Address().String(),
			Amount: sdk.NewCoins(sdk.NewInt64Coin(app.BondDenom, amount))})
	}

	t.Run("the wait gives up at once, the transfer still lands once", func(t *testing.T) {
		val := net.Validators[0]
		impatient, err := client.Dial(client.Config{GRPC: val.AppConfig.GRPC.Address, ChainID: chainID, GasPrice: "0" + app.BondDenom,
			Timeout: time.Millisecond, TimeoutBlocks: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer impatient.Close()
		before := balance()
		for i := range 6 {
			res, err := send(impatient, 1<<i)
			if err != nil || res.Height == 0 {
				t.Fatalf("send %d: %v (height %d)", i, err, res.Height)
			}
		}
		if got := balance() - before; got != 63 {
			t.Fatalf("payee received %d, want 63", got)
		}
	})

	t.Run("settle reports a committed transaction", func(t *testing.T) {
		res, err := send(c, 100)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Settle(ctx, payer.Address(), res.Hash, 0, uint64(res.Height))
		if err != nil || got.Height != res.Height {
			t.Fatalf("settle of a committed tx: %v (height %d, want %d)", err, got.Height, res.Height)
		}
	})

	// A hash nothing ever carried stands for a transaction that never
	// made a block.
	never := strings.Repeat("AB", 32)
	for _, tc := range []struct {
		name string
		seq  func(next uint64) uint64
	}{
		{"its sequence still unused", func(next uint64) uint64 { return next }},
		{"its sequence taken by another", func(next uint64) uint64 { return next - 1 }},
	} {
		t.Run("settle of a lost transaction, "+tc.name, func(t *testing.T) {
			acc, err := c.Auth.AccountInfo(ctx, &authtypes.QueryAccountInfoRequest{Address: payer.Address().String()})
			if err != nil {
				t.Fatal(err)
			}
			h, err := c.LatestHeightCheap(ctx)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = c.Settle(ctx, payer.Address(), never, tc.seq(acc.Info.Sequence), uint64(h)+2)
			if !errors.Is(err, sdkerrors.ErrTxTimeoutHeight) {
				t.Fatalf("settle: %v, want ErrTxTimeoutHeight", err)
			}
			t.Logf("settled as never included in %v", time.Since(start).Round(time.Millisecond))
		})
	}
}
