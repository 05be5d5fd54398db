package client

import (
	"fmt"

	"cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway"

	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/protocol"
)

// QuoteToChain is the one conversion of a quote from the agent protocol's
// shape (what the broker asks for and the agent signs) to the chain's
// (what the provider's key signs and MsgCreateLease carries). The agent
// that signs and the broker that sends must build the same bytes, so both
// call this.
func QuoteToChain(q protocol.Quote) (escrowtypes.Quote, error) {
	price, ok := math.NewIntFromString(q.PricePerEpoch)
	if !ok || price.IsNegative() {
		return escrowtypes.Quote{}, fmt.Errorf("quote price %q is not a non-negative integer", q.PricePerEpoch)
	}
	return escrowtypes.Quote{
		Provider: q.Provider, Buyer: q.Buyer, GpuClass: q.GPUClass, Gpus: q.GPUs, PricePerEpoch: price,
		Epochs: q.Epochs, ExpiresAt: q.ExpiresAt, Nonce: q.Nonce, PubKey: q.PubKey, Signature: q.Signature,
		ExtendsLease: q.ExtendsLease,
	}, nil
}

// Coins is an amount as the chain's bank module takes it.
func Coins(denom string, a highway.Amount) sdk.Coins {
	return sdk.NewCoins(sdk.NewCoin(denom, math.NewInt(int64(a))))
}

// TotalFromChain is a chain integer (a balance, a lease's escrow) as the
// marketplace's money type.
func TotalFromChain(i math.Int) highway.Total {
	if i.IsNil() {
		return highway.Total{}
	}
	return highway.TotalFromBig(i.BigInt())
}
