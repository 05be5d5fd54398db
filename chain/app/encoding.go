package app

import (
	"cosmossdk.io/x/tx/signing"
	"github.com/cosmos/gogoproto/proto"

	"github.com/cosmos/cosmos-sdk/client"
	"github.com/cosmos/cosmos-sdk/codec"
	"github.com/cosmos/cosmos-sdk/codec/address"
	"github.com/cosmos/cosmos-sdk/codec/types"
	"github.com/cosmos/cosmos-sdk/std"
	authtx "github.com/cosmos/cosmos-sdk/x/auth/tx"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"
	distrtypes "github.com/cosmos/cosmos-sdk/x/distribution/types"
	govv1 "github.com/cosmos/cosmos-sdk/x/gov/types/v1"
	stakingtypes "github.com/cosmos/cosmos-sdk/x/staking/types"

	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
)

// EncodingConfig is what a client needs to build, sign and decode
// Highway transactions, without constructing the app and its keepers.
type EncodingConfig struct {
	InterfaceRegistry types.InterfaceRegistry
	Codec             codec.Codec
	Amino             *codec.LegacyAmino
	TxConfig          client.TxConfig
}

// MakeEncodingConfig registers the message types clients send (auth,
// bank, staking, distribution, gov, escrow) for Highway's address format.
func MakeEncodingConfig() EncodingConfig {
	registry := newInterfaceRegistry()
	amino := codec.NewLegacyAmino()
	std.RegisterInterfaces(registry)
	std.RegisterLegacyAminoCodec(amino)
	authtypes.RegisterInterfaces(registry)
	banktypes.RegisterInterfaces(registry)
	stakingtypes.RegisterInterfaces(registry)
	distrtypes.RegisterInterfaces(registry)
	govv1.RegisterInterfaces(registry)
	escrowtypes.RegisterInterfaces(registry)
	cdc := codec.NewProtoCodec(registry)
	return EncodingConfig{
		InterfaceRegistry: registry,
		Codec:             cdc,
		Amino:             amino,
		TxConfig:          authtx.NewTxConfig(cdc, authtx.DefaultSignModes),
	}
}

// newInterfaceRegistry is the registry the app and its clients share:
// Highway's bech32 prefixes for signing, gogo and pulsar descriptors both.
func newInterfaceRegistry() types.InterfaceRegistry {
	SetAddressConfig()
	registry, err := types.NewInterfaceRegistryWithOptions(types.InterfaceRegistryOptions{
		ProtoFiles: proto.HybridResolver,
		SigningOptions: signing.Options{
			AddressCodec:          address.Bech32Codec{Bech32Prefix: AccountAddressPrefix},
			ValidatorAddressCodec: address.Bech32Codec{Bech32Prefix: ValidatorAddressPrefix},
		},
	})
	if err != nil {
		panic(err) // static configuration: cannot fail at run time
	}
	return registry
}
