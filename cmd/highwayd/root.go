package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"

	"cosmossdk.io/client/v2/autocli"
	"cosmossdk.io/core/appmodule"
	"cosmossdk.io/log"
	cmtcfg "github.com/cometbft/cometbft/config"
	dbm "github.com/cosmos/cosmos-db"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/cosmos/cosmos-sdk/client"
	"github.com/cosmos/cosmos-sdk/client/config"
	"github.com/cosmos/cosmos-sdk/client/debug"
	"github.com/cosmos/cosmos-sdk/client/flags"
	"github.com/cosmos/cosmos-sdk/client/keys"
	"github.com/cosmos/cosmos-sdk/client/pruning"
	"github.com/cosmos/cosmos-sdk/client/rpc"
	"github.com/cosmos/cosmos-sdk/client/snapshot"
	addresscodec "github.com/cosmos/cosmos-sdk/codec/address"
	"github.com/cosmos/cosmos-sdk/server"
	serverconfig "github.com/cosmos/cosmos-sdk/server/config"
	servertypes "github.com/cosmos/cosmos-sdk/server/types"
	simtestutil "github.com/cosmos/cosmos-sdk/testutil/sims"
	authcmd "github.com/cosmos/cosmos-sdk/x/auth/client/cli"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"
	genutilcli "github.com/cosmos/cosmos-sdk/x/genutil/client/cli"

	"github.com/highway-compute/highway/chain/app"
)

// DefaultNodeHome is ~/.highwayd.
func DefaultNodeHome() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".highwayd"
	}
	return filepath.Join(home, ".highwayd")
}

// NewRootCmd builds the highwayd command tree: the SDK's node, genesis,
// keys, query and tx commands, plus autocli commands for every module's
// messages and queries (escrow included).
func NewRootCmd() *cobra.Command {
	app.SetAddressConfig()
	// A throwaway app gives the codecs and module list the CLI needs.
	tmp := app.New(log.NewNopLogger(), dbm.NewMemDB(), nil, true, simtestutil.NewAppOptionsWithFlagHome(os.TempDir()))
	home := DefaultNodeHome()
	clientCtx := client.Context{}.
		WithCodec(tmp.AppCodec()).
		WithInterfaceRegistry(tmp.InterfaceRegistry()).
		WithTxConfig(tmp.TxConfig()).
		WithLegacyAmino(tmp.LegacyAmino()).
		WithInput(os.Stdin).
		WithAccountRetriever(authtypes.AccountRetriever{}).
		WithHomeDir(home).
		WithViper("HIGHWAYD")

	root := &cobra.Command{
		Use:           "highwayd",
		Short:         "Highway chain node: escrowed GPU leases paid per proven epoch",
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(cmd.OutOrStdout())
			cmd.SetErr(cmd.ErrOrStderr())
			ctx := clientCtx.WithCmdContext(cmd.Context())
			ctx, err := client.ReadPersistentCommandFlags(ctx, cmd.Flags())
			if err != nil {
				return err
			}
			ctx, err = config.ReadFromClientConfig(ctx)
			if err != nil {
				return err
			}
			if err := client.SetCmdClientContextHandler(ctx, cmd); err != nil {
				return err
			}
			appTemplate, appConfig := initAppConfig()
			return server.InterceptConfigsPreRunHandler(cmd, appTemplate, appConfig, initCometConfig())
		},
	}

	root.AddCommand(
		genutilcli.InitCmd(tmp.BasicModuleManager, home),
		debug.Cmd(),
		pruning.Cmd(newApp, home),
		snapshot.Cmd(newApp),
	)
	server.AddCommands(root, home, newApp, exportApp, func(*cobra.Command) {})
	root.AddCommand(
		server.StatusCommand(),
		genesisCommand(tmp, home),
		queryCommand(),
		txCommand(),
		keys.Commands(),
		signQuoteCmd(),
	)

	modules := map[string]appmodule.AppModule{}
	for name, m := range tmp.ModuleManager.Modules {
		if am, ok := m.(appmodule.AppModule); ok {
			modules[name] = am
		}
	}
	autoCli := autocli.AppOptions{
		Modules:               modules,
		ModuleOptions:         nil,
		AddressCodec:          addresscodec.NewBech32Codec(app.AccountAddressPrefix),
		ValidatorAddressCodec: addresscodec.NewBech32Codec(app.ValidatorAddressPrefix),
		ConsensusAddressCodec: addresscodec.NewBech32Codec(app.ConsensusAddressPrefix),
		ClientCtx:             clientCtx,
	}
	if err := autoCli.EnhanceRootCommand(root); err != nil {
		panic(err) // a broken module descriptor: fail at start, loudly
	}
	return root
}

// initCometConfig sets 1 s blocks: the escrow's epochs are counted in
// blocks, and a second is responsive without flooding the disk.
func initCometConfig() *cmtcfg.Config {
	cfg := cmtcfg.DefaultConfig()
	cfg.Consensus.TimeoutCommit = 1_000_000_000
	return cfg
}

// initAppConfig sets a zero minimum gas price in the chain's denom, so a
// fresh node starts without hand-editing app.toml.
func initAppConfig() (string, any) {
	cfg := serverconfig.DefaultConfig()
	cfg.MinGasPrices = "0" + app.BondDenom
	cfg.API.Enable = true
	return serverconfig.DefaultConfigTemplate, cfg
}

// genesisCommand is the SDK's genesis commands plus set-escrow.
func genesisCommand(a *app.App, home string) *cobra.Command {
	cmd := genutilcli.Commands(a.TxConfig(), a.BasicModuleManager, home)
	cmd.AddCommand(setEscrowGenesisCmd())
	return cmd
}

func queryCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:                        "query",
		Aliases:                    []string{"q"},
		Short:                      "Querying subcommands",
		DisableFlagParsing:         false,
		SuggestionsMinimumDistance: 2,
		RunE:                       client.ValidateCmd,
	}
	cmd.AddCommand(
		rpc.QueryEventForTxCmd(),
		server.QueryBlockCmd(),
		server.QueryBlocksCmd(),
		server.QueryBlockResultsCmd(),
		authcmd.QueryTxsByEventsCmd(),
		authcmd.QueryTxCmd(),
	)
	return cmd
}

func txCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:                        "tx",
		Short:                      "Transactions subcommands",
		DisableFlagParsing:         false,
		SuggestionsMinimumDistance: 2,
		RunE:                       client.ValidateCmd,
	}
	cmd.AddCommand(
		authcmd.GetSignCommand(),
		authcmd.GetSignBatchCommand(),
		authcmd.GetMultiSignCommand(),
		authcmd.GetValidateSignaturesCommand(),
		authcmd.GetBroadcastCommand(),
		authcmd.GetEncodeCommand(),
		authcmd.GetDecodeCommand(),
		authcmd.GetSimulateCmd(),
	)
	cmd.PersistentFlags().String(flags.FlagChainID, "", "The network chain ID")
	return cmd
}

func newApp(logger log.Logger, db dbm.DB, traceStore io.Writer, appOpts servertypes.AppOptions) servertypes.Application {
	return app.New(logger, db, traceStore, true, appOpts, server.DefaultBaseappOptions(appOpts)...)
}

func exportApp(logger log.Logger, db dbm.DB, traceStore io.Writer, height int64, forZeroHeight bool,
	jailAllowedAddrs []string, appOpts servertypes.AppOptions, modulesToExport []string,
) (servertypes.ExportedApp, error) {
	viperOpts, ok := appOpts.(*viper.Viper)
	if !ok {
		return servertypes.ExportedApp{}, errors.New("appOpts is not a viper.Viper")
	}
	viperOpts.Set(server.FlagInvCheckPeriod, 1)
	a := app.New(logger, db, traceStore, height == -1, viperOpts)
	if height != -1 {
		if err := a.LoadHeight(height); err != nil {
			return servertypes.ExportedApp{}, err
		}
	}
	return a.ExportAppStateAndValidators(forZeroHeight, jailAllowedAddrs, modulesToExport)
}
