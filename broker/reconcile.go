package broker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/highway-compute/highway"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/models"
)

// Leases the marketplace did not record. A leader sends an order's
// MsgCreateLease, then records the lease; one that stops in between
// (killed, or deposed: its writes refused) leaves a lease on chain, the
// buyer's escrow in it, that no page shows and no agent is told to run,
// while the next leader fails the order as if nothing was charged. The
// quote's nonce is recorded on the order before the transaction is sent
// (QuoteAnswer), and the chain's EventLeaseCreated carries it: the chain
// indexer finds such a lease's order and closes the lease with the
// buyer's wallet, so the unearned escrow comes back, and the order ends
// failed, saying so. It closes rather than adopts: the reservation may
// have lapsed and the GPUs been rented to someone else.

const evCreated = evPrefix + "EventLeaseCreated"

// reconcileCreated handles one EventLeaseCreated: nothing when the lease
// is recorded, is not a lease of this marketplace's orders, or is being
// recorded by this process right now.
func (b *Broker) reconcileCreated(ctx context.Context, chainID uint64, attrs map[string]string) error {
	if _, err := b.store.LeaseByChainID(ctx, chainID); highway.ErrorCode(err) != highway.ENOTFOUND {
		return err // recorded (nil), or the database failed
	}
	nonce := int64(parseU64(strings.Trim(attrs["quote_nonce"], `"`)))
	if nonce == 0 {
		return nil
	}
	o, err := b.store.OrderByQuoteNonce(ctx, nonce)
	if highway.ErrorCode(err) == highway.ENOTFOUND {
		return nil // a lease created outside the marketplace
	}
	if err != nil {
		return err
	}
	w, err := b.store.WalletOf(ctx, o.BuyerID)
	if err != nil {
		return err
	}
	if w.Address != strings.Trim(attrs["buyer"], `"`) {
		return nil // the nonce is another buyer's: not this order's lease
	}
	// This process may be creating the lease now (the block can be read
	// before createLease, back from the transaction, records it): it
	// records it within moments, or fails the order when its transaction
	// errs (a lost answer on a committed transaction), and then the lease
	// is an orphan like any other. So wait for it to finish, bounded by
	// createLease's own deadline.
	for waited := time.Duration(0); b.creating(o.ID); waited += 50 * time.Millisecond {
		if waited > leaseTxTimeout+5*time.Second {
			return fmt.Errorf("order %s: its lease is still being created after %v", o.ID, waited)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if _, err := b.store.LeaseByChainID(ctx, chainID); highway.ErrorCode(err) != highway.ENOTFOUND {
		return err // recorded meanwhile (nil), or the database failed
	}
	cl, err := b.cfg.Chain.Lease(ctx, chainID)
	if err != nil {
		return err
	}
	if cl.Status == escrowtypes.LEASE_STATUS_ACTIVE {
		signer, err := b.walletSigner(ctx, o.BuyerID)
		if err != nil {
			return err
		}
		if _, err := b.cfg.Chain.Send(ctx, signer, &escrowtypes.MsgCloseLease{Sender: w.Address, LeaseId: chainID}); err != nil {
			return err
		}
	}
	b.log.Warn("closed a lease created on chain but never recorded (its leader stopped in between); the escrow went back to the buyer",
		"order", o.ID, "chain_lease", chainID)
	const reason = "The marketplace's leader changed while your lease was being created: the lease was closed at once and its escrow returned to your wallet."
	b.mu.Lock()
	defer b.mu.Unlock()
	if f := b.flights[o.ID]; f != nil {
		b.failFlightLocked(ctx, o.ID, reason)
		return nil
	}
	if o.Status == models.OrderFailed && !strings.Contains(o.Failure, "escrow returned") {
		// Failed already (its reservation lapsed first), as if nothing had
		// been charged: the buyer is told where the escrow went.
		o.Failure = reason
		return b.store.UpdateOrder(ctx, o)
	}
	return nil
}

// creating reports whether this process is creating the order's lease
// (its quote was answered and the transaction is on its way).
func (b *Broker) creating(orderID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.flights[orderID]
	return f != nil && f.answered
}
