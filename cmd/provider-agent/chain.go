package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	sdk "github.com/cosmos/cosmos-sdk/types"

	chainapp "github.com/highway-compute/highway/chain/app"
	chainclient "github.com/highway-compute/highway/chain/client"
	"github.com/highway-compute/highway/provider-agent/chainlink"
)

// chainHooks are the agent's connection to highwayd.
type chainHooks struct {
	client    *chainclient.Client
	follower  *chainlink.Follower
	submitter *chainlink.Submitter
	quotes    chainlink.QuoteSigner
}

func (c *chainHooks) close() { _ = c.client.Close() }

// connectChain dials highwayd and loads the provider's key: from
// HIGHWAY_PROVIDER_MNEMONIC, or from a 0600 file. The key stays on this
// machine; the marketplace never sees it.
func connectChain(grpcAddr, rpcURL, chainID, gasPrice, keyFile string, log *slog.Logger) (*chainHooks, error) {
	if rpcURL == "" || chainID == "" {
		return nil, fmt.Errorf("--chain-grpc needs --chain-rpc and --chain-id too: %w", errUsage)
	}
	mnemonic := os.Getenv("HIGHWAY_PROVIDER_MNEMONIC")
	if keyFile != "" {
		fi, err := os.Stat(keyFile)
		if err != nil {
			return nil, fmt.Errorf("provider key file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("provider key file %s is readable by others (mode %o): chmod 600 it", keyFile, fi.Mode().Perm())
		}
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("provider key file: %w", err)
		}
		mnemonic = string(b)
	}
	mnemonic = strings.TrimSpace(mnemonic)
	if mnemonic == "" {
		return nil, errors.New("proving on chain needs the provider's key: set HIGHWAY_PROVIDER_MNEMONIC or --provider-key-file")
	}
	key, err := chainlink.KeyFromMnemonic(mnemonic)
	if err != nil {
		return nil, err
	}
	chainapp.SetAddressConfig()
	c, err := chainclient.Dial(chainclient.Config{GRPC: grpcAddr, RPC: rpcURL, ChainID: chainID, GasPrice: gasPrice})
	if err != nil {
		return nil, err
	}
	provider := sdk.AccAddress(key.PubKey().Address())
	log.Info("proving on chain", "chain_id", chainID, "provider", provider.String())
	return &chainHooks{
		client:    c,
		follower:  &chainlink.Follower{Client: c, Provider: provider, Log: log},
		submitter: &chainlink.Submitter{Client: c, Key: key},
		quotes:    chainlink.QuoteSigner{Key: key},
	}, nil
}
