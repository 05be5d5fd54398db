package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"cosmossdk.io/math"
	sdkerrors "github.com/cosmos/cosmos-sdk/types/errors"

	"github.com/highway-compute/highway"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/provider-agent/protocol"
)

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

// OrderRequest is a buyer's order as pages and the API submit it.
type OrderRequest struct {
	BuyerID        string
	Type           string // rent_now, fok, gtc
	OfferID        string
	Model          string
	MinVRAMGiB     int64
	Count          int64
	MaxPrice       int64 // per GPU-hour; rent_now: 0 means the offer's ask
	Region         string
	MaxRTTms       int64
	Hours          int64
	ExpiresAt      time.Time
	LatencyFirst   bool
	Workload       protocol.Workload
	IdempotencyKey string
}

var orderTypes = map[string]market.OrderType{"rent_now": market.RentNow, "fok": market.FillOrKill, "gtc": market.GoodTilCancelled}

// EscrowFor is what a lease of count GPUs at price per GPU-hour for hours
// escrows: the per-epoch price (rounded down, so the buyer never pays
// above the ask) times the epochs. ok is false when the price rounds to
// nothing per epoch.
func (b *Broker) EscrowFor(price, count, hours int64) (perEpoch, epochs int64, total math.Int, ok bool) {
	epochMs := b.cfg.EpochDuration.Milliseconds()
	epochs = (hours*3_600_000 + epochMs - 1) / epochMs
	per := math.NewInt(price).MulRaw(count).MulRaw(epochMs).QuoRaw(3_600_000)
	if !per.IsPositive() || !per.IsInt64() {
		return 0, epochs, math.ZeroInt(), false
	}
	return per.Int64(), epochs, per.MulRaw(epochs), true
}

// PlaceOrder validates and places an order. Errors a buyer can fix are
// *highway.Error with the offending field; an order that reached the
// engine and failed there (no capacity, offer gone) is stored as failed
// and returned with the error.
func (b *Broker) PlaceOrder(ctx context.Context, r OrderRequest) (*models.Order, error) {
	typ, ok := orderTypes[r.Type]
	if !ok {
		return nil, &highway.Error{Code: highway.EINVALID, Field: "type", Message: `Order type must be "rent_now", "fok" or "gtc".`}
	}
	if r.Workload.Command == "" && r.Workload.Image == "" {
		return nil, &highway.Error{Code: highway.EINVALID, Field: "workload", Message: "Give a command or a container image to run."}
	}
	if err := r.Workload.Validate("workload"); err != nil {
		var pe *protocol.Error
		if errors.As(err, &pe) {
			return nil, &highway.Error{Code: highway.EINVALID, Field: pe.Field, Message: "Workload: " + pe.Msg + "."}
		}
		return nil, &highway.Error{Code: highway.EINVALID, Field: "workload", Message: err.Error()}
	}
	if r.Count == 0 {
		r.Count = 1
	}
	if r.MaxRTTms == 0 {
		r.MaxRTTms = market.MaxRTTms
	}
	if typ == market.RentNow {
		b.mu.Lock()
		m := b.machines[r.OfferID]
		if m != nil && m.inEngine {
			if r.MaxPrice == 0 {
				r.MaxPrice = m.listed.Price
			}
			if r.Region == "" {
				r.Region = m.region
			}
			if r.Model == "" {
				r.Model = m.model
			}
		}
		b.mu.Unlock()
		if m == nil {
			return nil, &highway.Error{Code: highway.ENOTFOUND, Field: "offer_id", Message: "That offer is no longer listed."}
		}
	}
	if r.Region == "" {
		r.Region = b.cfg.Regions[0]
	}
	cmd := market.Command{Kind: market.KindPlaceOrder, Order: models.NewID(), Buyer: r.BuyerID, Type: typ, Model: r.Model,
		GPUs: r.Count, VRAMGiB: r.MinVRAMGiB, Region: r.Region, Price: r.MaxPrice, MaxRTTms: r.MaxRTTms, Hours: r.Hours,
		LatencyFirst: r.LatencyFirst}
	if typ == market.RentNow {
		cmd.Machine = r.OfferID
	}
	if typ == market.GoodTilCancelled {
		cmd.ExpiresAt = r.ExpiresAt.UnixMilli()
	}
	cmd.Now = max(b.now().UnixMilli(), 1)
	if err := cmd.Validate(); err != nil {
		return nil, fieldError(err)
	}
	if b.cfg.Chain == nil {
		return nil, &highway.Error{Code: highway.ECONFLICT, Message: "This marketplace is not connected to a chain, so nothing can be leased."}
	}
	_, _, need, ok := b.EscrowFor(r.MaxPrice, r.Count, r.Hours)
	if !ok {
		return nil, &highway.Error{Code: highway.EINVALID, Field: "max_price_per_gpu_hour", Message: "That price is too low to pay anything per epoch."}
	}
	w, err := b.EnsureWallet(ctx, r.BuyerID)
	if err != nil {
		return nil, err
	}
	bal, err := b.balance(ctx, w.Address)
	if err != nil {
		return nil, err
	}
	if bal.LT(need) {
		return nil, &highway.Error{Code: highway.EINSUFFICIENTFUNDS, Field: "hours",
			Message: fmt.Sprintf("This order may need up to %s %s in escrow; your balance is %s.", need, b.cfg.Denom, bal)}
	}
	wl, _ := json.Marshal(r.Workload)
	o := &models.Order{ID: cmd.Order, BuyerID: r.BuyerID, Type: r.Type, OfferID: r.OfferID, Model: r.Model, MinVRAMGiB: r.MinVRAMGiB,
		GPUs: r.Count, MaxPrice: r.MaxPrice, Region: r.Region, MaxRTTms: r.MaxRTTms, Hours: r.Hours, LatencyFirst: r.LatencyFirst,
		WorkloadJSON: string(wl), Status: models.OrderOpen, IdempotencyKey: r.IdempotencyKey}
	if typ == market.GoodTilCancelled {
		t := r.ExpiresAt.UTC()
		o.ExpiresAt = &t
	}
	existing, err := b.store.CreateOrder(ctx, o)
	if err != nil || existing {
		return o, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flights[o.ID] = &flight{order: *o}
	if _, err := b.applyLocked(ctx, cmd); err != nil {
		delete(b.flights, o.ID)
		o.Status, o.Failure = models.OrderFailed, plainFailure(err)
		if uerr := b.store.UpdateOrder(ctx, o); uerr != nil {
			return nil, uerr
		}
		b.notifyLocked()
		return o, fieldError(err)
	}
	if f := b.flights[o.ID]; f != nil {
		*o = f.order
	}
	return o, nil
}

// fieldError maps the engine's field names onto the API's.
func fieldError(err error) error {
	var he *highway.Error
	if !errors.As(err, &he) {
		return err
	}
	cp := *he
	switch cp.Field {
	case "gpus":
		cp.Field = "count"
	case "vram_gib":
		cp.Field = "min_vram_gib"
	case "price_per_gpu_hour":
		cp.Field = "max_price_per_gpu_hour"
	case "machine_id":
		cp.Field = "offer_id"
	}
	cp.Message = plainFailure(err)
	return &cp
}

// plainFailure says what went wrong in words a buyer understands.
func plainFailure(err error) string {
	switch {
	case errors.Is(err, market.ErrNoMatch):
		return "No capacity within your limits right now (model, count, VRAM, price and latency)."
	case errors.Is(err, market.ErrOfferNotFound):
		return "That offer is no longer available."
	case errors.Is(err, market.ErrUnknownModel):
		return "Unknown GPU model."
	case errors.Is(err, market.ErrUnknownRegion):
		return "Unknown region."
	}
	msg := highway.ErrorMessage(err)
	if msg == "" {
		return "Internal error."
	}
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}

// CancelOrder cancels a buyer's resting or matched order.
func (b *Broker) CancelOrder(ctx context.Context, buyerID, orderID string) (*models.Order, error) {
	o, err := b.store.OrderByID(ctx, orderID)
	if err != nil {
		return nil, err
	}
	if o.BuyerID != buyerID {
		return nil, highway.Errorf(highway.ENOTFOUND, "Order not found.")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.flights[orderID]
	if f == nil || f.answered {
		return nil, &highway.Error{Code: highway.ECONFLICT, Field: "order_id", Message: "This order can no longer be cancelled (status " + o.Status + ")."}
	}
	if _, err := b.applyLocked(ctx, market.Command{Kind: market.KindCancelOrder, Order: orderID, Buyer: buyerID}); err != nil {
		return nil, fieldError(err)
	}
	delete(b.flights, orderID)
	o.Status = models.OrderCancelled
	if err := b.store.UpdateOrder(ctx, o); err != nil {
		return nil, err
	}
	b.notifyLocked()
	return o, nil
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
	f.quote = protocol.Quote{Provider: m.providerAddress, Buyer: w.Address, GPUClass: m.model, GPUs: uint32(ev.Count),
		PricePerEpoch: strconv.FormatInt(per, 10), Epochs: uint64(epochs), ExpiresAt: b.now().Add(b.cfg.QuoteTTL).Unix(),
		Nonce: randomUint64() >> 1}
	b.quotes[m.agentID] = append(b.quotes[m.agentID], protocol.QuoteRequest{RequestID: ev.Order, ChainID: b.cfg.Chain.ChainID(), Quote: f.quote})
	b.wakeLocked(m.agentID)
	f.order.Status, f.order.MachineID, f.order.Price = models.OrderMatched, ev.Machine, ev.Price
	if err := b.store.UpdateOrder(ctx, &f.order); err != nil {
		b.log.Error("order update", "order", ev.Order, "err", err)
	}
}

// failFlightLocked ends a matched order that could not become a lease: its
// reservation (if any) is dropped so the GPUs return to the book.
func (b *Broker) failFlightLocked(ctx context.Context, orderID, reason string) {
	f := b.flights[orderID]
	if f == nil {
		return
	}
	delete(b.flights, orderID)
	if f.match.Kind == market.EvMatched {
		// The reservation may already be gone (it expired): nothing to drop.
		_, _ = b.applyLocked(ctx, market.Command{Kind: market.KindCancelOrder, Order: orderID, Buyer: f.order.BuyerID})
	}
	f.order.Status, f.order.Failure = models.OrderFailed, reason
	if err := b.store.UpdateOrder(ctx, &f.order); err != nil {
		b.log.Error("order update", "order", orderID, "err", err)
	}
	b.log.Info("order failed", "order", orderID, "reason", reason)
	b.notifyLocked()
}

// QuoteAnswer takes an agent's answer to a quote request. A signed quote
// must carry exactly the requested terms; then the lease is created on
// chain with the buyer's wallet.
func (b *Broker) QuoteAnswer(ctx context.Context, agentID string, r protocol.QuoteResponse) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.flights[r.RequestID]
	if f == nil || f.agentID != agentID || f.answered {
		return &highway.Error{Code: highway.ENOTFOUND, Field: "request_id", Message: "No quote request " + r.RequestID + " is outstanding for this agent."}
	}
	if r.Error != "" {
		b.failFlightLocked(ctx, r.RequestID, "The provider's agent refused the quote: "+r.Error)
		return nil
	}
	q := *r.Quote
	want := f.quote
	if q.Provider != want.Provider || q.Buyer != want.Buyer || q.GPUClass != want.GPUClass || q.GPUs != want.GPUs ||
		q.PricePerEpoch != want.PricePerEpoch || q.Epochs != want.Epochs || q.ExpiresAt != want.ExpiresAt || q.Nonce != want.Nonce {
		b.failFlightLocked(ctx, r.RequestID, "The provider's agent signed different terms than requested.")
		return &highway.Error{Code: highway.EINVALID, Field: "quote", Message: "The signed quote does not match the request."}
	}
	f.answered = true
	go b.createLease(context.WithoutCancel(ctx), f, q)
	return nil
}

// createLease sends MsgCreateLease for the buyer and, once it commits,
// confirms the reservation, records the lease and starts the workload.
func (b *Broker) createLease(ctx context.Context, f *flight, q protocol.Quote) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	signer, err := b.walletSigner(ctx, f.order.BuyerID)
	if err != nil {
		b.mu.Lock()
		b.failFlightLocked(ctx, f.order.ID, "Your wallet could not be unlocked.")
		b.mu.Unlock()
		return
	}
	price, _ := math.NewIntFromString(q.PricePerEpoch)
	msg := &escrowtypes.MsgCreateLease{Buyer: q.Buyer, Quote: escrowtypes.Quote{Provider: q.Provider, Buyer: q.Buyer,
		GpuClass: q.GPUClass, Gpus: q.GPUs, PricePerEpoch: price, Epochs: q.Epochs, ExpiresAt: q.ExpiresAt, Nonce: q.Nonce,
		PubKey: q.PubKey, Signature: q.Signature}}
	res, err := b.cfg.Chain.Send(ctx, signer, msg)
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
		delete(b.flights, f.order.ID)
		f.order.Status, f.order.Failure = models.OrderFailed, "The reservation lapsed before the lease was confirmed; the escrow was returned."
		_ = b.store.UpdateOrder(ctx, &f.order)
		b.notifyLocked()
		return
	}
	delete(b.flights, f.order.ID)
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
		EpochsTotal: int64(q.Epochs), Status: models.LeaseActive, WorkloadStatus: protocol.LeaseStarting,
		WorkloadJSON: f.order.WorkloadJSON, CreateTx: res.Hash, Remaining: price.MulRaw(int64(q.Epochs)).String(),
		Pending: "0", Frozen: "0", Paid: "0", Refunded: "0", Fees: "0",
		EndsAt: now.Add(time.Duration(q.Epochs) * b.cfg.EpochDuration).UTC()}
	if err := b.store.CreateLease(ctx, l); err != nil {
		b.log.Error("store lease", "order", f.order.ID, "err", err)
		return
	}
	var wl protocol.Workload
	_ = json.Unmarshal([]byte(f.order.WorkloadJSON), &wl)
	if _, err := b.addAssignmentLocked(ctx, m.agentID, protocol.Assignment{LeaseID: l.ID, Action: protocol.ActionStart, GPUs: uuids,
		Workload: wl, EndsAt: l.EndsAt.UnixMilli(), ChainLeaseID: chainID}); err != nil {
		b.log.Error("queue start", "lease", l.ID, "err", err)
	}
	b.log.Info("lease created", "lease", l.ID, "chain_lease", chainID, "order", f.order.ID, "machine", m.id, "tx", res.Hash)
	b.notifyLocked()
}
