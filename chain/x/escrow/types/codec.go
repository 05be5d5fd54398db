package types

import (
	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/codec"
	codectypes "github.com/cosmos/cosmos-sdk/codec/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/msgservice"
)

// RegisterInterfaces registers the module's messages with the interface
// registry, so transactions carrying them decode.
func RegisterInterfaces(registry codectypes.InterfaceRegistry) {
	registry.RegisterImplementations((*sdk.Msg)(nil),
		&MsgCreateLease{},
		&MsgSubmitProof{},
		&MsgExtendLease{},
		&MsgCloseLease{},
		&MsgOpenDispute{},
		&MsgResolveDispute{},
		&MsgUpdateParams{},
	)
	msgservice.RegisterMsgServiceDesc(registry, &_Msg_serviceDesc)
}

// RegisterLegacyAminoCodec registers the messages for amino JSON signing
// (Ledger devices sign amino JSON).
func RegisterLegacyAminoCodec(cdc *codec.LegacyAmino) {
	cdc.RegisterConcrete(&MsgCreateLease{}, "highway/escrow/MsgCreateLease", nil)
	cdc.RegisterConcrete(&MsgSubmitProof{}, "highway/escrow/MsgSubmitProof", nil)
	cdc.RegisterConcrete(&MsgExtendLease{}, "highway/escrow/MsgExtendLease", nil)
	cdc.RegisterConcrete(&MsgCloseLease{}, "highway/escrow/MsgCloseLease", nil)
	cdc.RegisterConcrete(&MsgOpenDispute{}, "highway/escrow/MsgOpenDispute", nil)
	cdc.RegisterConcrete(&MsgResolveDispute{}, "highway/escrow/MsgResolveDispute", nil)
	cdc.RegisterConcrete(&MsgUpdateParams{}, "highway/x/escrow/MsgUpdateParams", nil)
	cdc.RegisterConcrete(&Params{}, "highway/x/escrow/Params", nil)
}

func sdkIntFromUint64(v uint64) math.Int { return math.NewIntFromUint64(v) }
