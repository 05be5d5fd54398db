package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
)

// Block is one committed block's events, in order: each transaction's
// events (with its hash and result code), then the end-of-block events
// (payouts, refunds, lease endings).
type Block struct {
	Height      int64
	Time        time.Time
	Txs         []TxEvents
	BlockEvents []Event
}

// TxEvents are one transaction's events.
type TxEvents struct {
	Hash   string
	Code   uint32
	Events []Event
}

// FollowOptions tune Follow.
type FollowOptions struct {
	// Poll is the fallback interval when no websocket notification comes
	// (default 2 s); catch-up never depends on notifications arriving.
	Poll time.Duration
	// MaxBackoff caps the reconnect delay (default 10 s).
	MaxBackoff time.Duration
}

// Follow calls fn for every block from height from onward, in order,
// forever (until ctx ends or fn fails). CometBFT's websocket NewBlock
// subscription wakes it; each wake-up catches up from the last height
// handled through /block_results, so a dropped connection or a restart
// loses nothing: call Follow again with the next height.
func (c *Client) Follow(ctx context.Context, from int64, opts FollowOptions, fn func(Block) error) error {
	nodes := Endpoints(c.cfg.RPC)
	if len(nodes) == 0 {
		return fmt.Errorf("chain client: following blocks needs the RPC address")
	}
	if opts.Poll == 0 {
		opts.Poll = 2 * time.Second
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	if from < 1 {
		from = 1
	}
	next := from
	backoff := 100 * time.Millisecond
	for node := 0; ; node = (node + 1) % len(nodes) {
		// A session that ends in trouble moves to the next node: blocks
		// are catch-up by height, so any node continues where the last
		// one stopped.
		err := c.followSession(ctx, nodes[node], &next, opts, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ferr callbackError
		if errors.As(err, &ferr) {
			return ferr.err
		}
		// Connection trouble: back off and reconnect, then catch up.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, opts.MaxBackoff)
	}
}

// unsubscribeTimeout bounds the goodbye to a node at the end of a session.
const unsubscribeTimeout = 2 * time.Second

// callbackError marks an error returned by the caller's fn, which ends
// Follow instead of triggering a reconnect.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

func (c *Client) followSession(ctx context.Context, node string, next *int64, opts FollowOptions, fn func(Block) error) error {
	rpc, err := rpchttp.New(node, "/websocket")
	if err != nil {
		return err
	}
	if err := rpc.Start(); err != nil {
		return err
	}
	defer func() { _ = rpc.Stop() }()
	sub := fmt.Sprintf("highway-follow-%d", time.Now().UnixNano())
	events, err := rpc.Subscribe(ctx, sub, "tm.event='NewBlock'", 16)
	if err != nil {
		return err
	}
	defer func() {
		// Bounded: on a dead node the websocket's writer is gone and the
		// request would wait for good (stopping `highway dev` after its
		// chain died used to hang here). The session ends either way.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unsubscribeTimeout)
		defer cancel()
		_ = rpc.UnsubscribeAll(uctx, sub)
	}()
	tick := time.NewTicker(opts.Poll)
	defer tick.Stop()
	for {
		if err := c.catchUp(ctx, rpc, next, fn); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-events:
			if !ok {
				return fmt.Errorf("chain client: websocket subscription closed")
			}
		case <-tick.C:
		}
	}
}

// catchUp delivers every block from *next up to the latest.
func (c *Client) catchUp(ctx context.Context, rpc *rpchttp.HTTP, next *int64, fn func(Block) error) error {
	st, err := rpc.Status(ctx)
	if err != nil {
		return err
	}
	for h := *next; h <= st.SyncInfo.LatestBlockHeight; h++ {
		b, err := blockAt(ctx, rpc, h)
		if err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return callbackError{err}
		}
		*next = h + 1
	}
	return nil
}

func blockAt(ctx context.Context, rpc *rpchttp.HTTP, h int64) (Block, error) {
	blk, err := rpc.Block(ctx, &h)
	if err != nil {
		return Block{}, err
	}
	res, err := rpc.BlockResults(ctx, &h)
	if err != nil {
		return Block{}, err
	}
	out := Block{Height: h, Time: blk.Block.Time}
	for i, tx := range blk.Block.Txs {
		sum := sha256.Sum256(tx)
		te := TxEvents{Hash: strings.ToUpper(hex.EncodeToString(sum[:]))}
		if i < len(res.TxsResults) {
			te.Code = res.TxsResults[i].Code
			te.Events = convertEvents(res.TxsResults[i].Events)
		}
		out.Txs = append(out.Txs, te)
	}
	out.BlockEvents = convertEvents(res.FinalizeBlockEvents)
	return out, nil
}

func convertEvents(in []abci.Event) []Event {
	out := make([]Event, 0, len(in))
	for _, e := range in {
		ev := Event{Type: e.Type, Attributes: make(map[string]string, len(e.Attributes))}
		for _, a := range e.Attributes {
			ev.Attributes[a.Key] = a.Value
		}
		out = append(out, ev)
	}
	return out
}
