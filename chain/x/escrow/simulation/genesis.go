// Package simulation plugs the escrow module into the Cosmos SDK's
// simulation framework: a randomised genesis and weighted operations that
// create leases, submit real, fabricated and late proofs, close leases,
// open disputes and resolve them, as signed transactions delivered
// through the app.
package simulation

import (
	"github.com/cosmos/cosmos-sdk/types/module"

	"github.com/highway-compute/highway/chain/x/escrow/types"
)

// SimParams are the escrow params for simulations: short epochs (counted
// in blocks) so 500 blocks see many epochs, and a tiny PoC network so real
// proofs cost milliseconds. The statistics of PoC do not matter here; the
// state machine does.
func SimParams(denom, arbiter string) types.Params {
	p := types.DevParams()
	p.Denom = denom
	p.Arbiter = arbiter
	p.EpochBlocks = 6
	// The SDK's simulator moves the clock 5 000–10 000 s a block: a grace
	// of 20 000 s keeps each proof window open for a few blocks.
	p.ProofGraceMs = 20_000_000
	p.JudgeSpreadBlocks = 2
	p.DisputeWindowBlocks = 3
	p.ProofWorkSeconds = 1
	p.MaxEpochsPerLease = 20
	p.MaxQuoteTtlSeconds = 3600
	p.Poc.Dim = 32
	p.Poc.Layers = 1
	p.Poc.SampleSize = 8
	p.Poc.ExpectedValid = 64
	p.Poc.SlackBp = 5000
	p.Poc.MinDifficulty = 4
	p.Poc.H100NoncesPerSecond = 2048
	p.ClassRates = []types.ClassRate{{Class: "A100", MilliH100: 315}, {Class: "B200", MilliH100: 2274}, {Class: "H100", MilliH100: 1000}}
	return p
}

// RandomizedGenState writes the escrow genesis: simulation params with the
// first simulation account as arbiter.
func RandomizedGenState(simState *module.SimulationState) {
	gs := types.DefaultGenesis()
	gs.Params = SimParams(simState.BondDenom, simState.Accounts[0].Address.String())
	simState.GenState[types.ModuleName] = simState.Cdc.MustMarshalJSON(gs)
}
