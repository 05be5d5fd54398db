package broker

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	sdk "github.com/cosmos/cosmos-sdk/types"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/chain/client"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/models"
)

const (
	cursorName   = "escrow"
	evPrefix     = "highway.escrow.v1."
	evSubmitted  = evPrefix + "EventProofSubmitted"
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
	// touched are the leases the block's events name and counted the
	// machines whose epochs settled, each once and in event order: a block
	// can settle thousands of epochs, and each machine's reliability count
	// is re-read once per block rather than once per epoch.
	var touched []uint64
	var counted []string
	seenLease, seenMachine := map[uint64]bool{}, map[string]bool{}
	var transfers []transfer
	var at *time.Time // the block's time (nil: not reported)
	if !blk.Time.IsZero() {
		t := blk.Time.UTC()
		at = &t
	}
	handle := func(txHash string, ev client.Event) error {
		if ev.Type == "transfer" {
			transfers = append(transfers, transfer{seq: int64(len(transfers)), txHash: txHash, from: ev.Attributes["sender"],
				to: ev.Attributes["recipient"], amount: ev.Attributes["amount"]})
			return nil
		}
		if !strings.HasPrefix(ev.Type, evLeaseEvent) {
			return nil
		}
		id := parseU64(ev.Attributes["lease_id"])
		if id == 0 {
			return nil
		}
		switch ev.Type {
		case evCreated:
			if err := b.reconcileCreated(ctx, id, ev.Attributes); err != nil {
				return err
			}
		case evSubmitted, evProof, evMissed:
			l, err := b.store.LeaseByChainID(ctx, id)
			if highway.ErrorCode(err) == highway.ENOTFOUND {
				return nil // another marketplace's lease
			}
			if err != nil {
				return err
			}
			e := models.LeaseEpoch{LeaseID: l.ID, N: int64(parseU64(ev.Attributes["epoch"])), TxHash: txHash, Height: blk.Height,
				ValidNonces: int64(parseU64(ev.Attributes["valid_nonces"])), Required: int64(parseU64(ev.Attributes["required"]))}
			if ev.Type == evSubmitted {
				// The proof landed; the judging block gives the verdict.
				e.Status = "pending"
				if err := b.store.AddPendingEpoch(ctx, e); err != nil {
					return err
				}
				break
			}
			e.SettledAt = at
			if ev.Type == evProof {
				e.Status, e.Amount = "cleared", strings.Trim(ev.Attributes["amount"], `"`)
			} else {
				e.Status, e.Amount, e.Reason = "missed", strings.Trim(ev.Attributes["refunded"], `"`), strings.Trim(ev.Attributes["reason"], `"`)
			}
			if err := b.store.UpsertEpoch(ctx, e); err != nil {
				return err
			}
			if e.Status == "missed" {
				dedupe := l.ID + ":" + strconv.FormatInt(e.N, 10)
				b.alert(ctx, l.BuyerID, AlertEpochMissed, dedupe, fmt.Sprintf("Epoch %d of lease %s was missed (%s); its %s HWY came back to your wallet.",
					e.N, l.ID, e.Reason, highway.FormatHWY(e.Amount)), "/leases/"+l.ID)
				b.alert(ctx, l.ProviderID, AlertEpochMissed, dedupe, fmt.Sprintf("Epoch %d of lease %s on machine %s was missed (%s) and is not paid.",
					e.N, l.ID, l.MachineID, e.Reason), "/leases/"+l.ID)
			}
			if !seenMachine[l.MachineID] {
				seenMachine[l.MachineID] = true
				counted = append(counted, l.MachineID)
			}
		}
		if !seenLease[id] {
			seenLease[id] = true
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
	for _, id := range counted {
		if err := b.countEpochs(ctx, id); err != nil {
			return err
		}
	}
	for _, id := range touched {
		if err := b.refreshLease(ctx, id); err != nil {
			return err
		}
	}
	if err := b.indexTransfers(ctx, blk, at, transfers); err != nil {
		return err
	}
	return b.store.SetCursor(ctx, cursorName, blk.Height)
}

// transfer is a bank transfer event, numbered in its block.
type transfer struct {
	seq                      int64
	txHash, from, to, amount string
}

// indexTransfers records the block's transfers in and out of managed
// wallets: the wallet page's history comes from the chain, not from what
// the marketplace believes it sent.
func (b *Broker) indexTransfers(ctx context.Context, blk client.Block, at *time.Time, ts []transfer) error {
	if len(ts) == 0 {
		return nil
	}
	var addrs []string
	for _, t := range ts {
		addrs = append(addrs, t.from, t.to)
	}
	slices.Sort(addrs)
	managed, err := b.store.ManagedAddresses(ctx, slices.Compact(addrs))
	if err != nil || len(managed) == 0 {
		return err
	}
	var rows []models.WalletEvent
	for _, t := range ts {
		amount, ok := b.denomAmount(t.amount)
		if !ok {
			continue
		}
		for _, side := range []struct {
			addr, other string
			in          bool
		}{{t.to, t.from, true}, {t.from, t.to, false}} {
			if _, found := slices.BinarySearch(managed, side.addr); !found {
				continue
			}
			rows = append(rows, models.WalletEvent{Address: side.addr, Height: blk.Height, Seq: t.seq, At: at, TxHash: t.txHash,
				Kind: b.transferKind(side.other, side.in), Incoming: side.in, Counterparty: side.other, Amount: amount})
		}
	}
	return b.store.AddWalletEvents(ctx, rows)
}

// denomAmount is the chain denom's part of a transfer's coins ("1000uhwy"
// or "5stake,1000uhwy"); false when it moved none.
func (b *Broker) denomAmount(coins string) (string, bool) {
	cs, err := sdk.ParseCoinsNormalized(coins)
	if err != nil {
		return "", false
	}
	amt := cs.AmountOf(b.cfg.Denom)
	return amt.String(), amt.IsPositive()
}

// transferKind names a transfer by its counterparty, as a buyer reads it.
func (b *Broker) transferKind(other string, in bool) string {
	// Module accounts' addresses are rendered here, at run time: the SDK
	// caches an address's string, and one rendered at package init (before
	// the app sets the bech32 prefix) would be cached with the wrong one.
	escrowModuleAddr := authtypes.NewModuleAddress(escrowtypes.ModuleName).String()
	feeCollectorAddr := authtypes.NewModuleAddress(authtypes.FeeCollectorName).String()
	switch {
	case other == escrowModuleAddr && in:
		return "refund"
	case other == escrowModuleAddr:
		return "escrow"
	case other == feeCollectorAddr:
		return "network fee"
	case in && b.cfg.Faucet != nil && other == b.cfg.Faucet.Address().String():
		return "faucet"
	case in:
		return "received"
	}
	return "sent"
}
