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
	errBroadcastLost = errors.New("answer lost, outcome unknown")
	// errEarlierApplied: an earlier attempt of the send applied after
	// all; the result is that attempt's.
	errEarlierApplied = errors.New("an earlier attempt applied")
)

// settle reports what became of an attempt the wait did not see commit:
// its committed result, or sdkerrors.ErrTxTimeoutHeight when it is known
// never to apply.
func (c *Client) settle(ctx context.Context, addr sdk.AccAddress, sent *TxResult) (*TxResult, error) {
	res, applied, failure, err := c.fate(ctx, addr, sent)
	switch {
	case err != nil:
		return res, err
	case applied:
		return res, nil
	case failure != nil:
		// Included and refused (at delivery, for its sequence, its fee,
		// its messages): nothing of it applied, as the error says.
		return res, failure
	}
	return sent, errorsmod.Wrapf(sdkerrors.ErrTxTimeoutHeight, "chain client: tx %s was not included by height %d, and now never will be", sent.Hash, sent.timeoutHeight)
}

// conclude returns res and err, a send's failure, unless one of its
// attempts applied after all: a send that reports failure must leave no
// attempt that could still land (the caller may well retry).
func (c *Client) conclude(ctx context.Context, addr sdk.AccAddress, attempts []*TxResult, res *TxResult, err error) (*TxResult, error) {
	if err == nil {
		return res, nil
	}
	r, ferr := c.firstApplied(ctx, addr, attempts)
	if ferr != nil || r != nil {
		return r, ferr
	}
	return res, err
}

// firstApplied settles attempts in turn and returns the first that
// applied after all (nil when none did), or the error of one whose
// outcome is unknown.
func (c *Client) firstApplied(ctx context.Context, addr sdk.AccAddress, attempts []*TxResult) (*TxResult, error) {
	for _, f := range attempts {
		r, applied, _, err := c.fate(ctx, addr, f)
		if err != nil {
			return r, err
		}
		if applied {
			return r, nil
		}
	}
	return nil, nil
}

// fate waits until attempt f can no longer apply (the chain has
// committed its timeout height, or another transaction took its
// sequence), then looks for it in the blocks where it could have landed
// (after a known failed inclusion: only later ones). applied reports that
// it applied; failure, that it was included and refused (so nothing of it
// applied). A chain that commits nothing for max(Timeout, 30 s), or a
// node that cannot say, leaves the outcome unknown: err says so.
func (c *Client) fate(ctx context.Context, addr sdk.AccAddress, f *TxResult) (res *TxResult, applied bool, failure, err error) {
	if f.dead {
		return f, false, nil, nil
	}
	stall := max(c.cfg.Timeout, 30*time.Second)
	var last int64
	for moved := time.Now(); ; {
		_, seq, height, err := c.committedAccount(ctx, addr)
		if err == nil && (seq > f.sequence || uint64(height) >= f.timeoutHeight) {
			if seq <= f.sequence {
				// Its sequence is still unused at its last possible
				// height: nothing signed with it, ours included, applied.
				f.dead = true
				return f, false, nil, nil
			}
			res, applied, failure, err := c.included(ctx, f, min(uint64(height), f.timeoutHeight))
			if err == nil && !applied {
				f.dead = true
			}
			return res, applied, failure, err
		}
		if err == nil && height > last {
			last, moved = height, time.Now()
		}
		if time.Since(moved) > stall {
			return f, false, nil, fmt.Errorf("chain client: tx %s: outcome unknown: no block committed for %v (at height %d; it may be included up to %d)",
				f.Hash, stall, last, f.timeoutHeight)
		}
		select {
		case <-ctx.Done():
			return f, false, nil, fmt.Errorf("chain client: tx %s: outcome unknown: %w", f.Hash, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// included looks for f in the committed blocks from its first possible
// height (after its failed inclusion, if any) to upTo, by hash, so that
// whether it landed does not hang on the node's tx index. Found, the
// index says how it fared; it keeps a success over any later failed
// inclusion of the same bytes (CometBFT's kv indexer), so a success there
// or a failure at the last inclusion decides.
func (c *Client) included(ctx context.Context, f *TxResult, upTo uint64) (res *TxResult, applied bool, failure, err error) {
	var lastAt int64
	for h := max(f.fromHeight, f.failedAt+1, 1); h <= upTo; h++ {
		b, err := c.Comet.GetBlockByHeight(ctx, &cmtservice.GetBlockByHeightRequest{Height: int64(h)})
		if err != nil {
			return f, false, nil, fmt.Errorf("chain client: tx %s: outcome unknown: read block %d: %w", f.Hash, h, err)
		}
		var txs [][]byte
		if b.SdkBlock != nil {
			txs = b.SdkBlock.Data.Txs
		} else if b.Block != nil { //nolint:staticcheck // older nodes fill only Block
			txs = b.Block.Data.Txs //nolint:staticcheck
		}
		for _, tx := range txs {
			if fmt.Sprintf("%X", sha256.Sum256(tx)) == f.Hash {
				lastAt = int64(h)
			}
		}
	}
	if lastAt == 0 {
		return f, false, nil, nil
	}
	deadline := time.Now().Add(max(c.cfg.Timeout, 30*time.Second))
	for {
		got, err := c.Tx.GetTx(ctx, &txtypes.GetTxRequest{Hash: f.Hash})
		if err == nil && got.TxResponse != nil {
			r := got.TxResponse
			if r.Code == 0 {
				return c.result(r), true, nil, nil
			}
			if r.Height >= lastAt {
				return c.result(r), false, errorsmod.ABCIError(r.Codespace, r.Code, r.RawLog), nil
			}
		}
		if time.Now().After(deadline) {
			unknown := fmt.Errorf("chain client: tx %s: outcome unknown: included at height %d, but the node's tx index has no result for it", f.Hash, lastAt)
			if err != nil {
				unknown = fmt.Errorf("%w: %w", unknown, err)
			}
			return f, false, nil, unknown
		}
		select {
		case <-ctx.Done():
			return f, false, nil, fmt.Errorf("chain client: tx %s: outcome unknown: included at height %d: %w", f.Hash, lastAt, ctx.Err())
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
	var others []*TxResult
	for _, f := range failed {
		if f.sequence != seq {
			others = append(others, f)
		}
	}
	r, err := c.firstApplied(ctx, addr, others)
	if err != nil {
		return nil, err
	}
	return r, nil
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
	// The state's height decides whether an attempt can still land: a
	// node (or proxy) that does not say it cannot be trusted to settle.
	hs := md.Get(grpctypes.GRPCBlockHeightHeader)
	if len(hs) == 0 {
		return 0, 0, 0, fmt.Errorf("chain client: the node's answer for account %s names no block height (%s)", addr, grpctypes.GRPCBlockHeightHeader)
	}
	if height, err = strconv.ParseInt(hs[0], 10, 64); err != nil {
		return 0, 0, 0, fmt.Errorf("chain client: the node's block height %q: %w", hs[0], err)
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
