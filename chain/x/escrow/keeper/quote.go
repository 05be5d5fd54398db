package keeper

import (
	"context"

	"cosmossdk.io/collections"
	errorsmod "cosmossdk.io/errors"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/chain/x/escrow/types"
)

// checkQuote checks what every quote must pass, whatever it is for: it is
// unexpired and expires at most max_quote_ttl_seconds ahead, its provider
// signed it, and its (provider, nonce) was never used.
func (k Keeper) checkQuote(ctx context.Context, params types.Params, q types.Quote) error {
	sdkCtx := sdk.UnwrapSDKContext(ctx)
	now := sdkCtx.BlockTime().Unix()
	if q.ExpiresAt <= now {
		return errorsmod.Wrapf(types.ErrQuoteExpired, "expired at %d, block time %d", q.ExpiresAt, now)
	}
	if q.ExpiresAt > now+int64(params.MaxQuoteTtlSeconds) {
		return errorsmod.Wrapf(types.ErrInvalidQuote, "expires more than %d s ahead", params.MaxQuoteTtlSeconds)
	}
	if err := types.VerifyQuoteSignature(sdkCtx.ChainID(), q); err != nil {
		return err
	}
	used, err := k.UsedQuotes.Has(ctx, collections.Join(q.Provider, q.Nonce))
	if err != nil {
		return err
	}
	if used {
		return errorsmod.Wrapf(types.ErrQuoteReused, "provider %s nonce %d", q.Provider, q.Nonce)
	}
	return nil
}

// useQuote records the quote's nonce as used until the quote expires
// (forgetExpiredQuotes drops it then: an expired quote is refused anyway).
func (k Keeper) useQuote(ctx context.Context, q types.Quote) error {
	if err := k.UsedQuotes.Set(ctx, collections.Join(q.Provider, q.Nonce), q.ExpiresAt); err != nil {
		return err
	}
	return k.QuoteExpiry.Set(ctx, collections.Join3(q.ExpiresAt, q.Provider, q.Nonce))
}
