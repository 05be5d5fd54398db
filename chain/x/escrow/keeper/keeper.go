// Package keeper is the escrow module's state machine: leases, epochs and
// the due-height index that end-of-block processing walks.
package keeper

import (
	"context"
	"fmt"

	"cosmossdk.io/collections"
	"cosmossdk.io/core/address"
	"cosmossdk.io/core/store"
	"cosmossdk.io/log"
	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/codec"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/chain/x/escrow/types"
)

// Keeper owns the escrow store.
type Keeper struct {
	cdc          codec.BinaryCodec
	addressCodec address.Codec
	authority    string
	bank         types.BankKeeper
	auth         types.AccountKeeper
	feeCollector string

	Schema   collections.Schema
	Params   collections.Item[types.Params]
	LeaseSeq collections.Sequence
	Leases   collections.Map[uint64, types.Lease]
	// ByBuyer and ByProvider index leases by party for paginated queries.
	ByBuyer    collections.KeySet[collections.Pair[sdk.AccAddress, uint64]]
	ByProvider collections.KeySet[collections.Pair[sdk.AccAddress, uint64]]
	// Epochs holds settled epochs by (lease, epoch).
	Epochs collections.Map[collections.Pair[uint64, uint64], types.EpochRecord]
	// DeadlineDue holds (deadline height, lease, epoch): the epoch is
	// refunded at that height unless it cleared. One entry per live lease.
	DeadlineDue collections.KeySet[collections.Triple[int64, uint64, uint64]]
	// PayoutDue holds (payout height, lease, epoch) for cleared epochs.
	PayoutDue collections.KeySet[collections.Triple[int64, uint64, uint64]]
	// UsedQuotes maps (provider, nonce) to the quote's expiry; QuoteExpiry
	// indexes them by expiry so they can be forgotten once void anyway.
	UsedQuotes  collections.Map[collections.Pair[string, uint64], int64]
	QuoteExpiry collections.KeySet[collections.Triple[int64, string, uint64]]
	// BlockHashes keeps recent block hashes: epoch seeds derive from them.
	BlockHashes collections.Map[int64, []byte]
}

// NewKeeper returns the escrow keeper. authority is the account allowed
// to update params (the governance module account).
func NewKeeper(cdc codec.BinaryCodec, addressCodec address.Codec, storeService store.KVStoreService,
	authority string, bank types.BankKeeper, auth types.AccountKeeper, feeCollector string,
) Keeper {
	if _, err := addressCodec.StringToBytes(authority); err != nil {
		panic(fmt.Errorf("escrow: invalid authority address: %w", err))
	}
	sb := collections.NewSchemaBuilder(storeService)
	addrKey := sdk.AccAddressKey
	k := Keeper{
		cdc: cdc, addressCodec: addressCodec, authority: authority, bank: bank, auth: auth, feeCollector: feeCollector,
		Params:      collections.NewItem(sb, types.ParamsKey, "params", codec.CollValue[types.Params](cdc)),
		LeaseSeq:    collections.NewSequence(sb, types.LeaseSeqKey, "lease_seq"),
		Leases:      collections.NewMap(sb, types.LeasesKey, "leases", collections.Uint64Key, codec.CollValue[types.Lease](cdc)),
		ByBuyer:     collections.NewKeySet(sb, types.LeasesByBuyerKey, "leases_by_buyer", collections.PairKeyCodec(addrKey, collections.Uint64Key)),
		ByProvider:  collections.NewKeySet(sb, types.LeasesByProviderKey, "leases_by_provider", collections.PairKeyCodec(addrKey, collections.Uint64Key)),
		Epochs:      collections.NewMap(sb, types.EpochsKey, "epochs", collections.PairKeyCodec(collections.Uint64Key, collections.Uint64Key), codec.CollValue[types.EpochRecord](cdc)),
		DeadlineDue: collections.NewKeySet(sb, types.DeadlineDueKey, "deadline_due", collections.TripleKeyCodec(collections.Int64Key, collections.Uint64Key, collections.Uint64Key)),
		PayoutDue:   collections.NewKeySet(sb, types.PayoutDueKey, "payout_due", collections.TripleKeyCodec(collections.Int64Key, collections.Uint64Key, collections.Uint64Key)),
		UsedQuotes:  collections.NewMap(sb, types.UsedQuotesKey, "used_quotes", collections.PairKeyCodec(collections.StringKey, collections.Uint64Key), collections.Int64Value),
		QuoteExpiry: collections.NewKeySet(sb, types.QuoteExpiryKey, "quote_expiry", collections.TripleKeyCodec(collections.Int64Key, collections.StringKey, collections.Uint64Key)),
		BlockHashes: collections.NewMap(sb, types.BlockHashesKey, "block_hashes", collections.Int64Key, collections.BytesValue),
	}
	schema, err := sb.Build()
	if err != nil {
		panic(err)
	}
	k.Schema = schema
	return k
}

// Authority returns the params authority.
func (k Keeper) Authority() string { return k.authority }

// Logger returns the module logger.
func (k Keeper) Logger(ctx context.Context) log.Logger {
	return sdk.UnwrapSDKContext(ctx).Logger().With("module", "x/"+types.ModuleName)
}

// coins is amount of the lease's denom as sdk.Coins.
func coins(denom string, amount math.Int) sdk.Coins {
	return sdk.NewCoins(sdk.NewCoin(denom, amount))
}

// moduleBalance is the module account's balance in denom.
func (k Keeper) moduleBalance(ctx context.Context, denom string) math.Int {
	return k.bank.GetBalance(ctx, k.auth.GetModuleAddress(types.ModuleName), denom).Amount
}

// epochBounds returns epoch e's first-exclusive start, inclusive end and
// proof deadline heights: the epoch covers blocks (start, end] and its
// proof is accepted in (start, deadline].
func epochBounds(l types.Lease, e uint64) (start, end, deadline int64) {
	start = l.StartHeight + int64(e*l.EpochBlocks)
	end = start + int64(l.EpochBlocks)
	deadline = end + int64(l.ProofGraceBlocks)
	return start, end, deadline
}
