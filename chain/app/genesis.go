package app

import (
	"encoding/json"

	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/codec"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/module"
	govtypes "github.com/cosmos/cosmos-sdk/x/gov/types"
	govv1 "github.com/cosmos/cosmos-sdk/x/gov/types/v1"
	stakingtypes "github.com/cosmos/cosmos-sdk/x/staking/types"
)

// DefaultGenesis is every module's default genesis with the SDK's "stake"
// denom replaced by Highway's.
func DefaultGenesis(cdc codec.JSONCodec, basics module.BasicManager) map[string]json.RawMessage {
	gen := basics.DefaultGenesis(cdc)

	var staking stakingtypes.GenesisState
	cdc.MustUnmarshalJSON(gen[stakingtypes.ModuleName], &staking)
	staking.Params.BondDenom = BondDenom
	gen[stakingtypes.ModuleName] = cdc.MustMarshalJSON(&staking)

	var gov govv1.GenesisState
	cdc.MustUnmarshalJSON(gen[govtypes.ModuleName], &gov)
	gov.Params.MinDeposit = sdk.NewCoins(sdk.NewCoin(BondDenom, math.NewInt(10_000_000)))
	gov.Params.ExpeditedMinDeposit = sdk.NewCoins(sdk.NewCoin(BondDenom, math.NewInt(50_000_000)))
	gen[govtypes.ModuleName] = cdc.MustMarshalJSON(&gov)
	return gen
}
