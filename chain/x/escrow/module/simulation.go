package module

import (
	"github.com/cosmos/cosmos-sdk/types/module"
	simtypes "github.com/cosmos/cosmos-sdk/types/simulation"

	escrowsim "github.com/highway-compute/highway/chain/x/escrow/simulation"
)

var _ module.AppModuleSimulation = AppModule{}

// GenerateGenesisState writes a simulation genesis for escrow.
func (am AppModule) GenerateGenesisState(simState *module.SimulationState) {
	escrowsim.RandomizedGenState(simState)
}

// RegisterStoreDecoder registers nothing: store decoding is only used to
// diff two app exports, which Highway's simulation does not do.
func (AppModule) RegisterStoreDecoder(simtypes.StoreDecoderRegistry) {}

// WeightedOperations returns the escrow operations.
func (am AppModule) WeightedOperations(simState module.SimulationState) []simtypes.WeightedOperation {
	if am.auth == nil || am.bank == nil {
		return nil
	}
	return escrowsim.WeightedOperations(simState.TxConfig, am.keeper, am.auth, am.bank)
}
