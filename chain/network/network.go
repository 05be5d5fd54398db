// Package network starts in-process Highway networks (CometBFT + highwayd
// app, real blocks) for tests and for `highway dev`, on top of the SDK's
// testutil/network.
package network

import (
	"fmt"
	"os"
	"testing"
	"time"

	"cosmossdk.io/log"
	"cosmossdk.io/math"
	pruningtypes "cosmossdk.io/store/pruning/types"
	dbm "github.com/cosmos/cosmos-db"

	"github.com/cosmos/cosmos-sdk/baseapp"
	"github.com/cosmos/cosmos-sdk/client/flags"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	servertypes "github.com/cosmos/cosmos-sdk/server/types"
	sdknetwork "github.com/cosmos/cosmos-sdk/testutil/network"
	simtestutil "github.com/cosmos/cosmos-sdk/testutil/sims"
	sdk "github.com/cosmos/cosmos-sdk/types"
	moduletestutil "github.com/cosmos/cosmos-sdk/types/module/testutil"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"

	"github.com/highway-compute/highway/chain/app"
	"github.com/highway-compute/highway/chain/client"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
)

// Account is a funded genesis account with its key.
type Account struct {
	Name  string
	Key   *secp256k1.PrivKey
	Funds math.Int
}

// Address is the account's address.
func (a Account) Address() sdk.AccAddress { return sdk.AccAddress(a.Key.PubKey().Address()) }

// Options shape a network.
type Options struct {
	ChainID       string
	TimeoutCommit time.Duration
	Escrow        escrowtypes.Params
	Accounts      []Account
	// Validators is how many validators run, with equal power (default
	// 1). Only the first serves gRPC and RPC (the SDK's in-process
	// network gives the others neither).
	Validators int
}

// Config builds an SDK network config with Highway's app, denom and the
// given escrow params and funded accounts.
func Config(opts Options) (sdknetwork.Config, error) {
	app.SetAddressConfig()
	tmp := app.New(log.NewNopLogger(), dbm.NewMemDB(), nil, true, simtestutil.EmptyAppOptions{})
	gen := tmp.DefaultGenesis()
	cdc := tmp.AppCodec()

	escrowGen := escrowtypes.DefaultGenesis()
	escrowGen.Params = opts.Escrow
	if err := escrowGen.Validate(); err != nil {
		return sdknetwork.Config{}, fmt.Errorf("escrow genesis: %w", err)
	}
	gen[escrowtypes.ModuleName] = cdc.MustMarshalJSON(escrowGen)

	var authGen authtypes.GenesisState
	cdc.MustUnmarshalJSON(gen[authtypes.ModuleName], &authGen)
	var bankGen banktypes.GenesisState
	cdc.MustUnmarshalJSON(gen[banktypes.ModuleName], &bankGen)
	for _, a := range opts.Accounts {
		acc := authtypes.NewBaseAccount(a.Address(), nil, 0, 0)
		packed, err := authtypes.PackAccounts(authtypes.GenesisAccounts{acc})
		if err != nil {
			return sdknetwork.Config{}, err
		}
		authGen.Accounts = append(authGen.Accounts, packed...)
		coins := sdk.NewCoins(sdk.NewCoin(app.BondDenom, a.Funds))
		bankGen.Balances = append(bankGen.Balances, banktypes.Balance{Address: a.Address().String(), Coins: coins})
	}
	// Supply stays empty: bank computes it from the balances, which the
	// network extends with the validators' own.
	bankGen.Supply = nil
	gen[authtypes.ModuleName] = cdc.MustMarshalJSON(&authGen)
	gen[banktypes.ModuleName] = cdc.MustMarshalJSON(&bankGen)

	cfg := sdknetwork.DefaultConfig(func() sdknetwork.TestFixture {
		return sdknetwork.TestFixture{
			AppConstructor: func(val sdknetwork.ValidatorI) servertypes.Application {
				return app.New(val.GetCtx().Logger, dbm.NewMemDB(), nil, true,
					simtestutil.NewAppOptionsWithFlagHome(val.GetCtx().Config.RootDir),
					baseapp.SetPruning(pruningtypes.NewPruningOptionsFromString(val.GetAppConfig().Pruning)),
					// Synchronous pruning: IAVL's background pruner can
					// deadlock against commits on a MemDB (chain/app/sim_test.go).
					baseapp.SetIAVLSyncPruning(true),
					baseapp.SetMinGasPrices(val.GetAppConfig().MinGasPrices),
					baseapp.SetChainID(val.GetCtx().Viper.GetString(flags.FlagChainID)),
				)
			},
			GenesisState: gen,
			EncodingConfig: moduletestutil.TestEncodingConfig{
				InterfaceRegistry: tmp.InterfaceRegistry(), Codec: cdc, TxConfig: tmp.TxConfig(), Amino: tmp.LegacyAmino(),
			},
		}
	})
	cfg.NumValidators = max(opts.Validators, 1)
	cfg.ChainID = opts.ChainID
	cfg.BondDenom = app.BondDenom
	cfg.MinGasPrices = "0" + app.BondDenom
	cfg.TimeoutCommit = opts.TimeoutCommit
	return cfg, nil
}

// Start starts a network from cfg. The SDK picks free ports by binding and
// releasing them, so another process can take one in between; a start that
// fails that way is retried (twice) on fresh ports.
func Start(l sdknetwork.Logger, cfg sdknetwork.Config) (*sdknetwork.Network, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		dir, err := os.MkdirTemp("", "highway-net-*")
		if err != nil {
			return nil, err
		}
		net, err := sdknetwork.New(l, dir, cfg)
		if err == nil {
			return net, nil
		}
		lastErr = err
		l.Log(fmt.Sprintf("network start attempt %d failed: %v", attempt+1, err))
		_ = os.RemoveAll(dir)
	}
	return nil, lastErr
}

// StartForTest starts a single-validator network with opts, waits for its
// first blocks and dials a client to it; both are closed when tb ends.
func StartForTest(tb testing.TB, opts Options) (*sdknetwork.Network, *client.Client) {
	tb.Helper()
	cfg, err := Config(opts)
	if err != nil {
		tb.Fatal(err)
	}
	net, err := Start(tb, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(net.Cleanup)
	if _, err := net.WaitForHeight(2); err != nil {
		tb.Fatal(err)
	}
	c, err := DialValidator(net, opts.ChainID)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return net, c
}

// DialValidator dials a chain client to the network's first validator.
func DialValidator(net *sdknetwork.Network, chainID string) (*client.Client, error) {
	val := net.Validators[0]
	return client.Dial(client.Config{GRPC: val.AppConfig.GRPC.Address, RPC: val.RPCAddress, ChainID: chainID, GasPrice: "0" + app.BondDenom})
}
