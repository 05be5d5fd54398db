package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"cosmossdk.io/math"
	"github.com/spf13/cobra"

	"github.com/cosmos/cosmos-sdk/client"
	"github.com/cosmos/cosmos-sdk/client/flags"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	"github.com/cosmos/cosmos-sdk/server"
	sdk "github.com/cosmos/cosmos-sdk/types"
	signingtypes "github.com/cosmos/cosmos-sdk/types/tx/signing"
	genutiltypes "github.com/cosmos/cosmos-sdk/x/genutil/types"

	"github.com/highway-compute/highway/chain/x/escrow/types"
)

// setEscrowGenesisCmd edits the escrow section of genesis.json: dev or
// default params and the arbiter. `make chain` uses it; operators of a
// real network use it when preparing genesis.
func setEscrowGenesisCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set-escrow [arbiter-address]",
		Short: "Set the escrow module's params in genesis.json (arbiter, and --dev for short epochs)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := sdk.AccAddressFromBech32(args[0]); err != nil {
				return fmt.Errorf("arbiter: %w", err)
			}
			serverCtx := server.GetServerContextFromCmd(cmd)
			clientCtx := client.GetClientContextFromCmd(cmd)
			genFile := serverCtx.Config.GenesisFile()
			appGenesis, err := genutiltypes.AppGenesisFromFile(genFile)
			if err != nil {
				return err
			}
			state, err := genutiltypes.GenesisStateFromAppGenesis(appGenesis)
			if err != nil {
				return err
			}
			gs := types.DefaultGenesis()
			if dev, _ := cmd.Flags().GetBool("dev"); dev {
				gs.Params = types.DevParams()
			}
			gs.Params.Arbiter = args[0]
			if err := gs.Validate(); err != nil {
				return err
			}
			state[types.ModuleName] = clientCtx.Codec.MustMarshalJSON(gs)
			appState, err := json.MarshalIndent(state, "", "  ")
			if err != nil {
				return err
			}
			appGenesis.AppState = appState
			return appGenesis.SaveAs(genFile)
		},
	}
	cmd.Flags().Bool("dev", false, "short epochs and small PoC parameters for a local dev network")
	cmd.Flags().String(flags.FlagHome, DefaultNodeHome(), "node's home directory")
	return cmd
}

// signQuoteCmd signs a lease quote with a provider key from the keyring,
// offline, printing the quote JSON that `tx escrow create-lease` takes.
// The provider agent does the same automatically.
func signQuoteCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sign-quote [provider-key] [buyer-address] [gpu-class] [gpus] [price-per-epoch] [epochs]",
		Short: "Sign a lease quote with a provider's key (offline); prints the quote JSON",
		Args:  cobra.ExactArgs(6),
		RunE: func(cmd *cobra.Command, args []string) error {
			clientCtx, err := client.GetClientQueryContext(cmd)
			if err != nil {
				return err
			}
			rec, err := clientCtx.Keyring.Key(args[0])
			if err != nil {
				return err
			}
			provider, err := rec.GetAddress()
			if err != nil {
				return err
			}
			gpus, err := strconv.ParseUint(args[3], 10, 32)
			if err != nil {
				return fmt.Errorf("gpus: %w", err)
			}
			price, ok := math.NewIntFromString(args[4])
			if !ok {
				return fmt.Errorf("price-per-epoch %q is not an integer", args[4])
			}
			epochs, err := strconv.ParseUint(args[5], 10, 64)
			if err != nil {
				return fmt.Errorf("epochs: %w", err)
			}
			ttl, _ := cmd.Flags().GetDuration("ttl")
			nonce, _ := cmd.Flags().GetUint64("nonce")
			if nonce == 0 {
				nonce = uint64(time.Now().UnixNano())
			}
			q := types.Quote{
				Provider: provider.String(), Buyer: args[1], GpuClass: args[2], Gpus: uint32(gpus),
				PricePerEpoch: price, Epochs: epochs, ExpiresAt: time.Now().Add(ttl).Unix(), Nonce: nonce,
			}
			if clientCtx.ChainID == "" {
				return fmt.Errorf("--chain-id is required: quotes are bound to one chain")
			}
			sig, pub, err := clientCtx.Keyring.Sign(args[0], types.QuoteSignBytes(clientCtx.ChainID, q), signingtypes.SignMode_SIGN_MODE_DIRECT)
			if err != nil {
				return err
			}
			pk, ok := pub.(*secp256k1.PubKey)
			if !ok {
				return fmt.Errorf("key %s is not secp256k1", args[0])
			}
			q.PubKey, q.Signature = pk.Key, sig
			if err := types.VerifyQuoteSignature(clientCtx.ChainID, q); err != nil {
				return err
			}
			// Always JSON: the output is the argument of create-lease.
			bz, err := clientCtx.Codec.MarshalJSON(&q)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), string(bz))
			return err
		},
	}
	cmd.Flags().Duration("ttl", 5*time.Minute, "how long the quote stays valid")
	cmd.Flags().Uint64("nonce", 0, "quote nonce (default: current time in ns)")
	flags.AddKeyringFlags(cmd.Flags())
	cmd.Flags().String(flags.FlagChainID, "", "chain id the quote is valid on")
	cmd.Flags().String(flags.FlagHome, DefaultNodeHome(), "home directory with the keyring")
	return cmd
}
