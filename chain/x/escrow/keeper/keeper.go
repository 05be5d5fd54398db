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
	// BlockHashes keeps recent block hashes: epoch seeds and sample seeds
	// derive from them.
	BlockHashes collections.Map[int64, []byte]
	// BlockTimes keeps recent block times (Unix ms): proof windows are
	// measured from them.
	BlockTimes collections.Map[int64, int64]
	// PendingProofs holds each epoch's one proof from the block that
	// carried it to the block that judges it.
	PendingProofs collections.Map[collections.Pair[uint64, uint64], types.PendingProof]
	// JudgeDue holds (judge height, lease, epoch) for every pending proof.
	JudgeDue collections.KeySet[collections.Triple[int64, uint64, uint64]]
	// Judging holds (lease, epoch) for every pending proof, keys only: a
	// close counts a lease's epochs under judgment here, because walking
	// PendingProofs would read (and charge the closer gas for) each proof
	// body, up to MaxProofBytes, which the provider chooses: the buyer's
	// close would cost what the provider wanted and could run out of the
	// gas it simulated with when a proof lands in the same block.
	Judging collections.KeySet[collections.Pair[uint64, uint64]]
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
		BlockTimes:  collections.NewMap(sb, types.BlockTimesKey, "block_times", collections.Int64Key, collections.Int64Value),
		PendingProofs: collections.NewMap(sb, types.PendingProofsKey, "pending_proofs",
			collections.PairKeyCodec(collections.Uint64Key, collections.Uint64Key), codec.CollValue[types.PendingProof](cdc)),
		JudgeDue: collections.NewKeySet(sb, types.JudgeDueKey, "judge_due", collections.TripleKeyCodec(collections.Int64Key, collections.Uint64Key, collections.Uint64Key)),
		Judging:  collections.NewKeySet(sb, types.JudgingKey, "judging", collections.PairKeyCodec(collections.Uint64Key, collections.Uint64Key)),
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

// epochBounds returns epoch e's seed block, last block and settlement
// height. The epoch covers blocks (start, end]; its proof may land in any
// of them whose time is inside the work window (see proofWindow); every
// proof that lands by end is judged by end + judge_spread_blocks, where
// the epoch is settled.
func epochBounds(l types.Lease, e uint64) (start, end, settle int64) {
	start = l.StartHeight + int64(e*l.EpochBlocks)
	end = start + int64(l.EpochBlocks)
	settle = end + int64(l.JudgeSpreadBlocks)
	return start, end, settle
}

// pendingCount is how many of the lease's epochs have a proof waiting for
// its verdict (at most a few: one per epoch whose window is open or just
// closed).
func (k Keeper) pendingCount(ctx context.Context, leaseID uint64) (int64, error) {
	var n int64
	err := k.Judging.Walk(ctx, collections.NewPrefixedPairRange[uint64, uint64](leaseID), func(collections.Pair[uint64, uint64]) (bool, error) {
		n++
		return false, nil
	})
	return n, err
}
