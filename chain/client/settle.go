package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	errorsmod "cosmossdk.io/errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cosmos/cosmos-sdk/client/grpc/cmtservice"
	sdk "github.com/cosmos/cosmos-sdk/types"
	sdkerrors "github.com/cosmos/cosmos-sdk/types/errors"
	grpctypes "github.com/cosmos/cosmos-sdk/types/grpc"
	"github.com/cosmos/cosmos-sdk/types/query"
	txtypes "github.com/cosmos/cosmos-sdk/types/tx"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"
)

// A send ends in a known outcome: applied (once), or not applied and never
// to be. Each attempt carries a timeout height; after it, or once another
// transaction has used the attempt's sequence, nothing can include the
// attempt any more, and the blocks up to there say whether anything did.
// docs/chain.md gives the cases this closes.

var (
	// errBroadcastLost: the node's answer to a broadcast never came.
	errBroadcastLost = errors.New("answer lost")
	// errEarlierApplied: an earlier attempt of the send applied after
	// all; the result is that attempt's.
	errEarlierApplied = errors.New("an earlier attempt applied")
)

// settle reports what became of an attempt the wait did not see commit:
// its committed result, or sdkerrors.ErrTxTimeoutHeight when it is known
// never to apply.
func (c *Client) settle(ctx context.Context, addr sdk.AccAddress, sent *TxResult) (*TxResult, error) {
	res, applied, err := c.fate(ctx, addr, sent)
	if err != nil || applied {
		return res, err
	}
	sent.dead = true
	return sent, errorsmod.Wrapf(sdkerrors.ErrTxTimeoutHeight, "chain client: tx %s was not included by height %d, and now never will be", sent.Hash, sent.timeoutHeight)
}

// fate waits until attempt f can no longer be included (the chain has
// committed its timeout height, or another transaction took its
// sequence), then looks for it in the blocks where it could have landed
// (after a delivery failure: only a later inclusion counts). applied
// reports an inclusion, with its result and the chain's error when it
// failed. A chain that commits nothing for max(Timeout, 30 s) leaves the
// outcome unknown, and the error says so.
func (c *Client) fate(ctx context.Context, addr sdk.AccAddress, f *TxResult) (res *TxResult, applied bool, err error) {
	if f.dead {
		return f, false, nil
	}
	stall := max(c.cfg.Timeout, 30*time.Second)
	var last int64
	for moved := time.Now(); ; {
		_, seq, height, err := c.committedAccount(ctx, addr)
		if err == nil && (seq > f.sequence || uint64(height) >= f.timeoutHeight) {
			if seq <= f.sequence {
				// Its sequence is still unused at its last possible
				// height: nothing with it, ours included, applied.
				return f, false, nil
			}
			r, inc, err := c.included(ctx, f, min(uint64(height), f.timeoutHeight))
			if err == nil && !inc {
				f.dead = true
			}
			return r, inc, err
		}
		if err == nil && height > last {
			last, moved = height, time.Now()
		}
		if time.Since(moved) > stall {
			return f, false, fmt.Errorf("chain client: tx %s: outcome unknown: no block committed for %v (at height %d; it may be included up to %d)",
				f.Hash, stall, last, f.timeoutHeight)
		}
		select {
		case <-ctx.Done():
			return f, false, fmt.Errorf("chain client: tx %s: outcome unknown: %w", f.Hash, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// included looks for f in the committed blocks from its first possible
// height (after its failed inclusion, if any) to upTo, by hash, so it
// does not depend on the node's tx index being on or caught up. Found, it
// returns the transaction's result from the index, waiting for it.
func (c *Client) included(ctx context.Context, f *TxResult, upTo uint64) (*TxResult, bool, error) {
	from := max(f.fromHeight, f.failedAt+1, 1)
	for h := from; h <= upTo; h++ {
		b, err := c.Comet.GetBlockByHeight(ctx, &cmtservice.GetBlockByHeightRequest{Height: int64(h)})
		if err != nil {
			return f, false, fmt.Errorf("chain client: tx %s: outcome unknown: read block %d: %w", f.Hash, h, err)
		}
		var txs [][]byte
		if b.SdkBlock != nil {
			txs = b.SdkBlock.Data.Txs
		} else if b.Block != nil { //nolint:staticcheck // older nodes fill only Block
			txs = b.Block.Data.Txs //nolint:staticcheck
		}
		for _, tx := range txs {
			if fmt.Sprintf("%X", sha256.Sum256(tx)) == f.Hash {
				return c.resultAt(ctx, f, int64(h))
			}
		}
	}
	return f, false, nil
}

// resultAt reads the result of f, included at height, from the tx index.
func (c *Client) resultAt(ctx context.Context, f *TxResult, height int64) (*TxResult, bool, error) {
	deadline := time.Now().Add(max(c.cfg.Timeout, 30*time.Second))
	for {
		res, err := c.Tx.GetTx(ctx, &txtypes.GetTxRequest{Hash: f.Hash})
		if err == nil && res.TxResponse != nil && res.TxResponse.Height >= height {
			r := res.TxResponse
			if r.Code != 0 {
				return c.result(r), true, errorsmod.ABCIError(r.Codespace, r.Code, r.RawLog)
			}
			return c.result(r), true, nil
		}
		if err != nil && status.Code(err) != codes.NotFound && time.Now().After(deadline) {
			return f, true, fmt.Errorf("chain client: tx %s was included at height %d, result unknown: %w", f.Hash, height, err)
		}
		if time.Now().After(deadline) {
			return f, true, fmt.Errorf("chain client: tx %s was included at height %d, result not in the node's tx index", f.Hash, height)
		}
		select {
		case <-ctx.Done():
			return f, true, fmt.Errorf("chain client: tx %s was included at height %d, result unknown: %w", f.Hash, height, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// clearOf makes sure no earlier attempt of this send can still apply
// beside a resend signed with sequence seq. Two transactions with one
// sequence exclude each other, so an attempt at seq is no risk. One at
// another sequence is, if the sequences between free up (an evicted
// transaction, a failed one gossiped back in once the sequence before it
// landed): then the resend and the old attempt would both pay. clearOf
// waits for such an attempt's fate (usually one block, when another
// transaction takes its sequence; at most its timeout height) and returns
// its result if it applied after all.
func (c *Client) clearOf(ctx context.Context, addr sdk.AccAddress, seq uint64, failed []*TxResult) (*TxResult, error) {
	for _, f := range failed {
		if f.dead || f.sequence == seq {
			continue
		}
		r, applied, err := c.fate(ctx, addr, f)
		if err != nil && !applied {
			return nil, err
		}
		if applied {
			// It landed: that is the send's outcome, whatever its result.
			if err != nil {
				return nil, fmt.Errorf("chain client: an earlier attempt landed after all: %w", err)
			}
			return r, nil
		}
	}
	return nil, nil
}

// committedAccount reads addr's account number and sequence from the
// committed state, with the height of that state.
func (c *Client) committedAccount(ctx context.Context, addr sdk.AccAddress) (number, seq uint64, height int64, err error) {
	var md metadata.MD
	res, err := c.Auth.Account(ctx, &authtypes.QueryAccountRequest{Address: addr.String()}, grpc.Header(&md))
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return 0, 0, 0, fmt.Errorf("chain client: account %s does not exist on chain (fund it first): %w", addr, sdkerrors.ErrUnknownAddress)
		}
		return 0, 0, 0, fmt.Errorf("chain client: load account %s: %w", addr, err)
	}
	var ai sdk.AccountI
	if err := c.enc.InterfaceRegistry.UnpackAny(res.Account, &ai); err != nil {
		return 0, 0, 0, fmt.Errorf("chain client: decode account: %w", err)
	}
	if hs := md.Get(grpctypes.GRPCBlockHeightHeader); len(hs) > 0 {
		height, _ = strconv.ParseInt(hs[0], 10, 64)
	}
	return ai.GetAccountNumber(), ai.GetSequence(), height, nil
}

// latestHeight is the height the next block will have, the cheap way: the
// validator-set query carries it (CometBFT answers with the block store's
// height + 1), and one validator is a few hundred bytes where the latest
// block can be megabytes of proofs. A transaction signed now can land at
// this height at the earliest.
func (c *Client) latestHeight(ctx context.Context) (int64, error) {
	res, err := c.Comet.GetLatestValidatorSet(ctx, &cmtservice.GetLatestValidatorSetRequest{Pagination: &query.PageRequest{Limit: 1}})
	if err != nil {
		return 0, fmt.Errorf("chain client: latest height: %w", err)
	}
	return res.BlockHeight, nil
}
