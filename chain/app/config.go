// Package app is highwayd's Cosmos SDK application: auth, bank, staking,
// distribution, slashing, governance, consensus, genutil and Highway's own
// escrow module, wired by hand (simapp is not available here, and explicit
// wiring keeps every keeper dependency visible).
package app

import (
	sdk "github.com/cosmos/cosmos-sdk/types"
)

const (
	// Name is the application name.
	Name = "highway"
	// AccountAddressPrefix is the bech32 prefix of account addresses.
	AccountAddressPrefix = "hwy"
	// BondDenom is the staking and fee denom (micro-HWY). Leases are paid in
	// it too, by default.
	BondDenom = "uhwy"
	// DisplayDenom is what people read: 1 HWY = 1 000 000 uhwy.
	DisplayDenom = "hwy"
)

// Bech32 prefixes derived from AccountAddressPrefix, as the SDK expects.
var (
	ValidatorAddressPrefix = AccountAddressPrefix + "valoper"
	ConsensusAddressPrefix = AccountAddressPrefix + "valcons"
)

// SetAddressConfig sets the process-wide bech32 prefixes. The SDK keeps
// them in a global; every binary and test that touches Highway addresses
// calls this first (it is idempotent, and safe to call from several tests).
func SetAddressConfig() {
	cfg := sdk.GetConfig()
	if cfg.GetBech32AccountAddrPrefix() == AccountAddressPrefix {
		return
	}
	cfg.SetBech32PrefixForAccount(AccountAddressPrefix, AccountAddressPrefix+"pub")
	cfg.SetBech32PrefixForValidator(ValidatorAddressPrefix, ValidatorAddressPrefix+"pub")
	cfg.SetBech32PrefixForConsensusNode(ConsensusAddressPrefix, ConsensusAddressPrefix+"pub")
	cfg.Seal()
}
