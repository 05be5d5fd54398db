package client

import (
	"context"

	sdk "github.com/cosmos/cosmos-sdk/types"
)

// Settle exposes settle to the external tests, for an attempt described
// by its hash, sequence and timeout height.
func (c *Client) Settle(ctx context.Context, addr sdk.AccAddress, hash string, sequence, timeoutHeight uint64) (*TxResult, error) {
	return c.settle(ctx, addr, &TxResult{Hash: hash, sequence: sequence, timeoutHeight: timeoutHeight})
}

// LatestHeightCheap exposes latestHeight.
func (c *Client) LatestHeightCheap(ctx context.Context) (int64, error) { return c.latestHeight(ctx) }
