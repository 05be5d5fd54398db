package broker

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	sdkerrors "github.com/cosmos/cosmos-sdk/types/errors"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/chain/client"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
)

// The order-to-lease flow, one state machine. An order is open (placed,
// perhaps resting in the book), then matched (a reservation holds GPUs
// while the provider's agent signs a quote and the buyer's wallet sends
// MsgCreateLease), and ends leased, failed, cancelled or expired. While it
// lives, its flight (b.flights) is the one owner of its state, and every
// change of status goes through moveOrderLocked: the transition is
// checked, the row written once, the flight dropped when the order ends.

// orderNext lists the statuses each status may move to.
var orderNext = map[string][]string{
	models.OrderOpen:    {models.OrderMatched, models.OrderFailed, models.OrderCancelled, models.OrderExpired},
	models.OrderMatched: {models.OrderLeased, models.OrderFailed, models.OrderCancelled, models.OrderExpired},
}

// moveOrderLocked moves a live order to its next status. A move the
// machine does not allow is refused and logged (it would be a broker bug:
// an order leased twice, or failed after its lease). A leased order's row
// is written with its lease, in one transaction (Store.CreateLease).
func (b *Broker) moveOrderLocked(ctx context.Context, f *flight, to, failure string) bool {
	from := f.order.Status
	if !slices.Contains(orderNext[from], to) {
		b.log.Error("order transition refused", "order", f.order.ID, "from", from, "to", to)
		return false
	}
	f.order.Status, f.order.Failure = to, failure
	if _, live := orderNext[to]; !live {
		delete(b.flights, f.order.ID)
		if to != models.OrderLeased {
			f.order.RegistryLogin = "" // nothing will pull the image
		}
	}
	if to != models.OrderLeased {
		if err := b.store.UpdateOrder(ctx, &f.order); err != nil {
			b.log.Error("order update", "order", f.order.ID, "to", to, "err", err)
		}
	}
	if to == models.OrderFailed {
		b.log.Info("order failed", "order", f.order.ID, "reason", failure)
	}
	b.notifyLocked()
	return true
}

// flight is an order between placement and its end (lease, failure,
// cancel, expiry): resting, or matched and waiting for the provider's
// quote and the lease transaction.
type flight struct {
	order models.Order
	// match is the reservation (Kind == EvMatched) once matched.
	match market.Event
	quote protocol.Quote
	// agentID is who was asked to sign; answered once the quote came back.
	agentID  string
	answered bool
}

// startQuoteLocked turns a match into a quote request to the machine's
// agent: the provider's consent to these exact terms, signed with its key.
func (b *Broker) startQuoteLocked(ctx context.Context, ev market.Event) {
	f := b.flights[ev.Order]
	m := b.machines[ev.Machine]
	if f == nil || m == nil {
		b.log.Error("match without order or machine", "order", ev.Order, "machine", ev.Machine)
		return
	}
	f.match = ev
	per, epochs, _, ok := b.EscrowFor(ev.Price, ev.Count, f.order.Hours)
	w, err := b.store.WalletOf(ctx, f.order.BuyerID)
	switch {
	case !ok:
		b.failFlightLocked(ctx, ev.Order, "The price is too low to pay anything per epoch.")
		return
	case err != nil:
		b.failFlightLocked(ctx, ev.Order, "Your wallet could not be read.")
		return
	case m.agentID == "" || m.providerAddress == "":
		b.failFlightLocked(ctx, ev.Order, "The provider's agent cannot sign quotes.")
		return
	}
	f.agentID = m.agentID
	wait := quoteAt(ev, b.now())
	f.quote = protocol.Quote{Provider: m.providerAddress, Buyer: w.Address, GPUClass: m.model, GPUs: uint32(ev.Count),
		PricePerEpoch: strconv.FormatInt(per, 10), Epochs: uint64(epochs), ExpiresAt: b.now().Add(wait + b.cfg.QuoteTTL).Unix(),
		Nonce: randomUint64() >> 1}
	f.order.MachineID, f.order.Price = ev.Machine, ev.Price
	if !b.moveOrderLocked(ctx, f, models.OrderMatched, "") {
		return
	}
	req := protocol.QuoteRequest{RequestID: ev.Order, ChainID: b.cfg.Chain.ChainID(), Quote: f.quote}
	if wait == 0 {
		b.mail.ask(m.agentID, req)
		return
	}
	// The GPUs were taken from interruptible leases, which have until
	// ev.At to stop: the lease (and its first epoch) starts after that.
	agent := m.agentID
	time.AfterFunc(wait, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if g := b.flights[ev.Order]; g == f && !f.answered {
			b.mail.ask(agent, req)
		}
	})
}

// failFlightLocked ends an order that could not become a lease: its
// reservation (if any) is released so the GPUs return to the book. The
// release runs after the command being applied, never inside it
// (applyLocked's follow-ups).
func (b *Broker) failFlightLocked(ctx context.Context, orderID, reason string) {
	f := b.flights[orderID]
	if f == nil {
		return
	}
	if f.match.Kind == market.EvMatched || f.order.Status == models.OrderMatched {
		// The reservation may already be gone (it expired): nothing to
		// drop. A flight loaded at start knows no match but its order's
		// status; its reservation is dropped the same way.
		b.followLocked(ctx, market.Command{Kind: market.KindCancelOrder, Order: orderID, Buyer: f.order.BuyerID})
	}
	b.moveOrderLocked(ctx, f, models.OrderFailed, reason)
}

// QuoteAnswer takes an agent's answer to a quote request. A signed quote
// must carry exactly the requested terms; then the lease is created on
// chain with the buyer's wallet.
func (b *Broker) QuoteAnswer(ctx context.Context, agentID string, r protocol.QuoteResponse) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.extensionAnswerLocked(agentID, r) {
		return nil
	}
	f := b.flights[r.RequestID]
	if f == nil || f.agentID != agentID || f.answered {
		return &highway.Error{Code: highway.ENOTFOUND, Field: "request_id", Message: "No quote request " + r.RequestID + " is outstanding for this agent."}
	}
	if r.Error != "" {
		b.failFlightLocked(ctx, r.RequestID, "The provider's agent refused the quote: "+r.Error)
		return nil
	}
	q := *r.Quote
	if !sameTerms(q, f.quote) {
		b.failFlightLocked(ctx, r.RequestID, "The provider's agent signed different terms than requested.")
		return &highway.Error{Code: highway.EINVALID, Field: "quote", Message: "The signed quote does not match the request."}
	}
	f.order.QuoteNonce = int64(q.Nonce)
	f.answered = true
	go b.createLease(context.WithoutCancel(ctx), f, q)
	return nil
}

// leaseTxTimeout bounds a lease's creation: the transaction and its
// recording.
const leaseTxTimeout = 60 * time.Second

// createLease sends MsgCreateLease for the buyer and, once it commits,
// confirms the reservation, records the lease and starts the workload.
func (b *Broker) createLease(ctx context.Context, f *flight, q protocol.Quote) {
	ctx, cancel := context.WithTimeout(ctx, leaseTxTimeout)
	defer cancel()
	// The quote's nonce is recorded before any money moves (here, not
	// under the broker's lock): a leader that stops after sending the
	// lease and before recording it leaves a lease the next one finds by
	// this nonce and closes (reconcile.go). One that can no longer write
	// (deposed) sends nothing.
	if err := b.store.SetOrderQuoteNonce(ctx, f.order.ID, int64(q.Nonce)); err != nil {
		b.log.Error("record the quote before the lease", "order", f.order.ID, "err", err)
		b.mu.Lock()
		b.failFlightLocked(ctx, f.order.ID, "The marketplace could not record the provider's quote; nothing was charged.")
		b.mu.Unlock()
		return
	}
	signer, err := b.walletSigner(ctx, f.order.BuyerID)
	if err != nil {
		b.mu.Lock()
		b.failFlightLocked(ctx, f.order.ID, "Your wallet could not be unlocked.")
		b.mu.Unlock()
		return
	}
	cq, err := client.QuoteToChain(q)
	if err != nil {
		b.mu.Lock()
		b.failFlightLocked(ctx, f.order.ID, "The provider's quote was malformed.")
		b.mu.Unlock()
		return
	}
	res, err := b.cfg.Chain.Send(ctx, signer, &escrowtypes.MsgCreateLease{Buyer: q.Buyer, Quote: cq})
	if err != nil {
		reason := "The lease transaction failed: " + err.Error()
		switch {
		case errors.Is(err, sdkerrors.ErrInsufficientFunds), errors.Is(err, escrowtypes.ErrInsufficientFunds):
			reason = "Insufficient funds: your balance does not cover the escrow."
		case errors.Is(err, escrowtypes.ErrQuoteExpired):
			reason = "The provider's quote expired before the lease was created."
		}
		b.mu.Lock()
		b.failFlightLocked(ctx, f.order.ID, reason)
		b.mu.Unlock()
		return
	}
	idStr, _ := res.Attr("highway.escrow.v1.EventLeaseCreated", "lease_id")
	chainID, _ := strconv.ParseUint(idStr, 10, 64)

	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.applyLocked(ctx, market.Command{Kind: market.KindConfirmLease, Order: f.order.ID}); err != nil {
		// The reservation lapsed while the transaction was in flight: the
		// GPUs may be someone else's now, so the lease must not run. The
		// buyer's wallet closes it at once; unearned escrow comes back.
		b.log.Warn("lease confirmed on chain after its reservation lapsed; closing it", "order", f.order.ID, "chain_lease", chainID)
		_, _ = b.cfg.Chain.Send(ctx, signer, &escrowtypes.MsgCloseLease{Sender: q.Buyer, LeaseId: chainID})
		b.moveOrderLocked(ctx, f, models.OrderFailed, "The reservation lapsed before the lease was confirmed; the escrow was returned.")
		return
	}
	m := b.machines[f.match.Machine]
	var uuids []string
	for i, idx := range m.offered {
		if f.match.GPUs&(1<<uint(i)) != 0 {
			if g := gpuAt(m.gpus, idx); g != nil {
				uuids = append(uuids, g.UUID)
			}
		}
	}
	now := b.now()
	l := &models.Lease{ID: models.NewID(), ChainLeaseID: chainID, OrderID: f.order.ID, BuyerID: f.order.BuyerID,
		ProviderID: m.providerID, MachineID: m.id, AgentID: m.agentID, Model: q.GPUClass, GPUs: int64(q.GPUs),
		GPUUUIDs: strings.Join(uuids, ","), PricePerHour: f.match.Price, PricePerEpoch: q.PricePerEpoch,
		EpochsTotal: int64(q.Epochs), Status: models.LeaseActive, WorkloadStatus: protocol.LeaseStarting, Interruptible: f.order.Interruptible,
		WorkloadJSON: f.order.WorkloadJSON, CreateTx: res.Hash, Remaining: cq.PricePerEpoch.MulRaw(int64(q.Epochs)).String(),
		Pending: "0", Frozen: "0", Paid: "0", Refunded: "0", Fees: "0",
		EndsAt: now.Add(time.Duration(q.Epochs) * b.cfg.EpochDuration).UTC()}
	if err := b.store.CreateLease(ctx, l); err != nil {
		// The lease is on chain but cannot be recorded (the database
		// failed, or this replica was deposed): no page would show it and
		// no agent run it. The buyer's wallet closes it at once; unearned
		// escrow comes back. (Should this process die first, the next
		// leader's indexer closes it: reconcile.go.)
		b.log.Error("store lease; closing it on chain", "order", f.order.ID, "chain_lease", chainID, "err", err)
		_, _ = b.cfg.Chain.Send(ctx, signer, &escrowtypes.MsgCloseLease{Sender: q.Buyer, LeaseId: chainID})
		b.followLocked(ctx, market.Command{Kind: market.KindReleaseLease, Order: f.order.ID})
		b.moveOrderLocked(ctx, f, models.OrderFailed, "The lease could not be recorded; it was closed at once and its escrow returned to your wallet.")
		return
	}
	f.order.LeaseID = l.ID
	b.moveOrderLocked(ctx, f, models.OrderLeased, "")
	var wl protocol.Workload
	_ = json.Unmarshal([]byte(f.order.WorkloadJSON), &wl)
	if _, err := b.mail.post(ctx, m.agentID, protocol.Assignment{LeaseID: l.ID, Action: protocol.ActionStart, GPUs: uuids,
		Workload: wl, EndsAt: l.EndsAt.UnixMilli(), ChainLeaseID: chainID}); err != nil {
		b.log.Error("queue start", "lease", l.ID, "err", err)
	}
	b.log.Info("lease created", "lease", l.ID, "chain_lease", chainID, "order", f.order.ID, "machine", m.id, "tx", res.Hash)
	b.notifyLocked()
}
