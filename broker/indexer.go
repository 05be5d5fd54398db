package broker

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/chain/client"
	"github.com/highway-compute/highway/models"
)

const (
	cursorName   = "escrow"
	evPrefix     = "highway.escrow.v1."
	evProof      = evPrefix + "EventProofAccepted"
	evMissed     = evPrefix + "EventEpochMissed"
	evLeaseEvent = evPrefix + "Event"
)

// indexLoop follows the chain from the last indexed height and keeps the
// leases, their epochs and their books in step with escrow events. It
// resumes after errors; the cursor moves only after a block is applied,
// so a restart re-reads at most one block (every write is idempotent).
func (b *Broker) indexLoop(ctx context.Context) {
	for ctx.Err() == nil {
		from, err := b.store.Cursor(ctx, cursorName)
		if err == nil && from == 0 {
			// A fresh marketplace has no leases on the chain's history.
			var h int64
			h, _, err = b.cfg.Chain.LatestHeight(ctx)
			from = h
		}
		if err == nil {
			err = b.cfg.Chain.Follow(ctx, from+1, client.FollowOptions{Poll: time.Second}, func(blk client.Block) error {
				return b.indexBlock(ctx, blk)
			})
		}
		if ctx.Err() != nil {
			return
		}
		b.log.Warn("chain indexer stopped; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

func (b *Broker) indexBlock(ctx context.Context, blk client.Block) error {
	var touched []uint64
	handle := func(txHash string, ev client.Event) error {
		if !strings.HasPrefix(ev.Type, evLeaseEvent) {
			return nil
		}
		id := parseU64(ev.Attributes["lease_id"])
		if id == 0 {
			return nil
		}
		switch ev.Type {
		case evProof, evMissed:
			l, err := b.store.LeaseByChainID(ctx, id)
			if highway.ErrorCode(err) == highway.ENOTFOUND {
				return nil // another marketplace's lease
			}
			if err != nil {
				return err
			}
			e := models.LeaseEpoch{LeaseID: l.ID, N: int64(parseU64(ev.Attributes["epoch"])), TxHash: txHash, Height: blk.Height}
			if !blk.Time.IsZero() {
				at := blk.Time.UTC()
				e.SettledAt = &at
			}
			if ev.Type == evProof {
				e.Status, e.ValidNonces, e.Required = "cleared", int64(parseU64(ev.Attributes["valid_nonces"])), int64(parseU64(ev.Attributes["required"]))
				e.Amount = strings.Trim(ev.Attributes["amount"], `"`)
			} else {
				e.Status, e.Amount = "missed", strings.Trim(ev.Attributes["refunded"], `"`)
			}
			if err := b.store.UpsertEpoch(ctx, e); err != nil {
				return err
			}
			if err := b.countEpochs(ctx, l.MachineID); err != nil {
				return err
			}
		}
		if !slices.Contains(touched, id) {
			touched = append(touched, id)
		}
		return nil
	}
	for _, tx := range blk.Txs {
		if tx.Code != 0 {
			continue
		}
		for _, ev := range tx.Events {
			if err := handle(tx.Hash, ev); err != nil {
				return err
			}
		}
	}
	for _, ev := range blk.BlockEvents {
		if err := handle("", ev); err != nil {
			return err
		}
	}
	for _, id := range touched {
		if err := b.refreshLease(ctx, id); err != nil {
			return err
		}
	}
	return b.store.SetCursor(ctx, cursorName, blk.Height)
}
