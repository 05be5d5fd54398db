package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
)

// digest identifies a request for its Idempotency-Key: SHA-256 over its
// fields as the buyer sent them (before any default is filled in).
func (r OrderRequest) digest() string {
	b, _ := json.Marshal(struct {
		Type, OfferID, Model                  string
		MinVRAMGiB, Count, MaxPrice, MaxRTTms int64
		Region                                string
		Hours                                 int64
		ExpiresAt                             int64
		LatencyFirst                          bool
		Workload                              protocol.Workload
		Interruptible                         bool `json:",omitempty"` // omitted when false: older keys keep their digest
	}{r.Type, r.OfferID, r.Model, r.MinVRAMGiB, r.Count, r.MaxPrice, r.MaxRTTms, r.Region, r.Hours, r.ExpiresAt.UnixMilli(), r.LatencyFirst,
		withoutPassword(r.Workload), r.Interruptible})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// withoutPassword is w with a registry login's password left out: the
// digest is stored, and a password's hash must not be (it could be
// guessed offline).
func withoutPassword(w protocol.Workload) protocol.Workload {
	if w.RegistryAuth != nil {
		w.RegistryAuth = &protocol.RegistryAuth{Username: w.RegistryAuth.Username}
	}
	return w
}

// MaxOrderRest is how long a good-til-cancelled order may rest.
const MaxOrderRest = 30 * 24 * time.Hour

// DefaultMaxOpenOrders is Config.MaxOpenOrders's default. Exchanges cap
// open orders per account too: each resting order is scanned whenever
// capacity of its model comes back, so the cap bounds what one account
// adds to every such command, and funds in view (fundsInView) bound what
// the orders may claim.
const DefaultMaxOpenOrders = 100

// fundsInView is what the buyer's open orders may still take from the
// wallet into escrow (at their max prices: a matched order's price may be
// lower, so this errs towards refusing), and how many there are. An
// order is checked against the balance less this, and a withdrawal may
// not dip into it: otherwise one order's funds would back any number of
// resting orders, each of which, once matched, holds GPUs from other
// buyers until its lease fails for want of funds.
func (b *Broker) fundsInView(ctx context.Context, buyerID string) (highway.Total, int, error) {
	os, err := b.store.OpenOrdersOf(ctx, buyerID, b.cfg.MaxOpenOrders+1)
	if err != nil {
		return highway.Total{}, 0, err
	}
	held := highway.TotalOf(0)
	for _, o := range os {
		if _, _, need, ok := b.EscrowFor(o.MaxPrice, o.GPUs, o.Hours); ok {
			held = held.Add(need)
		}
	}
	return held, len(os), nil
}

// placedBefore is the order placed before under r's Idempotency-Key, if
// any (an error when the key came with another request).
func (b *Broker) placedBefore(ctx context.Context, r OrderRequest, hash string) (*models.Order, error) {
	if r.IdempotencyKey == "" {
		return nil, nil
	}
	prev, err := b.store.OrderByIdempotencyKey(ctx, r.BuyerID, r.IdempotencyKey, b.now())
	switch highway.ErrorCode(err) {
	case "":
		if err := prev.RetriedWith(hash); err != nil {
			return nil, err
		}
		return prev, nil
	case highway.ENOTFOUND:
		return nil, nil
	default:
		return nil, err
	}
}

// buyerLock serialises one buyer's order placements (from the check of
// funds in view to the order's record) and withdrawals (from the check to
// the transaction's commit), so that two at once cannot both count on the
// same funds. Striped: a lock per buyer would need forgetting, and a
// stripe shared by a few buyers only queues their placements, which take
// milliseconds.
func (b *Broker) buyerLock(buyerID string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(buyerID))
	return &b.buyerLocks[h.Sum32()%uint32(len(b.buyerLocks))]
}

// OrderRequest is a buyer's order as pages and the API submit it.
type OrderRequest struct {
	BuyerID      string
	Type         string // rent_now, fok, gtc
	OfferID      string
	Model        string
	MinVRAMGiB   int64
	Count        int64
	MaxPrice     int64 // per GPU-hour; rent_now: 0 means the offer's ask
	Region       string
	MaxRTTms     int64
	Hours        int64
	ExpiresAt    time.Time
	LatencyFirst bool
	// Interruptible makes the order a bid for interruptible GPUs: MaxPrice
	// is the bid (rent_now: 0 means the offer's floor).
	Interruptible  bool
	Workload       protocol.Workload
	IdempotencyKey string
}

var orderTypes = map[string]market.OrderType{"rent_now": market.RentNow, "fok": market.FillOrKill, "gtc": market.GoodTilCancelled}

// EscrowFor is what a lease of count GPUs at price per GPU-hour for hours
// escrows: the per-epoch price (rounded down, so the buyer never pays
// above the ask) times the epochs. ok is false when the price rounds to
// nothing per epoch.
func (b *Broker) EscrowFor(price, count, hours int64) (perEpoch, epochs int64, total highway.Total, ok bool) {
	epochMs := b.cfg.EpochDuration.Milliseconds()
	epochs = b.epochsFor(hours)
	per := highway.TotalOf(highway.Amount(price)).Mul(count).Mul(epochMs).Quo(3_600_000)
	p, fits := per.Amount()
	if per.Sign() <= 0 || !fits {
		return 0, epochs, highway.Total{}, false
	}
	return int64(p), epochs, per.Mul(epochs), true
}

// epochsFor is how many epochs cover hours: rounded up, so a lease (or
// an extension) is never shorter than what the buyer asked for.
func (b *Broker) epochsFor(hours int64) int64 {
	epochMs := b.cfg.EpochDuration.Milliseconds()
	return (hours*3_600_000 + epochMs - 1) / epochMs
}

// PlaceOrder validates and places an order. Errors a buyer can fix are
// *highway.Error with the offending field; an order that reached the
// engine and failed there (no capacity, offer gone) is stored as failed
// and returned with the error.
func (b *Broker) PlaceOrder(ctx context.Context, r OrderRequest) (*models.Order, error) {
	// A retry under an Idempotency-Key answers what the first request got,
	// before anything that may have changed since (the balance now in
	// escrow, the offer now taken) is checked again.
	hash := r.digest()
	if prev, err := b.placedBefore(ctx, r, hash); prev != nil || err != nil {
		return prev, err
	}
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
				if r.Interruptible && m.listed.SpotFloor > 0 {
					r.MaxPrice = m.listed.SpotFloor
				}
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
		LatencyFirst: r.LatencyFirst, Interruptible: r.Interruptible}
	if typ == market.RentNow {
		cmd.Machine = r.OfferID
	}
	if typ == market.GoodTilCancelled {
		// A resting order holds a place in the book and funds in view: it
		// may rest for a month at most, not until 9999.
		if r.ExpiresAt.After(b.now().Add(MaxOrderRest)) {
			return nil, &highway.Error{Code: highway.EINVALID, Field: "expires_at", Message: "A resting order may expire at most 30 days from now."}
		}
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
	mu := b.buyerLock(r.BuyerID)
	mu.Lock()
	defer mu.Unlock()
	// A retry that arrived while the first request was being placed finds
	// its order now, rather than counting its funds against itself.
	if prev, err := b.placedBefore(ctx, r, hash); prev != nil || err != nil {
		return prev, err
	}
	held, open, err := b.fundsInView(ctx, r.BuyerID)
	if err != nil {
		return nil, err
	}
	if open >= b.cfg.MaxOpenOrders {
		return nil, &highway.Error{Code: highway.ECONFLICT, Field: "type",
			Message: fmt.Sprintf("You have %d open orders, the most one account may have; cancel one or let it fill first.", open)}
	}
	// The balance after the open orders: a lease that commits meanwhile
	// takes its escrow out of the balance before its order leaves the
	// open ones, so read in this order it is counted twice (refusing too
	// much), never not at all.
	bal, err := b.balance(ctx, w.Address)
	if err != nil {
		return nil, err
	}
	if bal.Cmp(need) < 0 {
		return nil, &highway.Error{Code: highway.EINSUFFICIENTFUNDS, Field: "hours",
			Message: fmt.Sprintf("This order may need up to %s %s in escrow; your balance is %s.", need, b.cfg.Denom, bal)}
	}
	if bal.Cmp(held.Add(need)) < 0 {
		return nil, &highway.Error{Code: highway.EINSUFFICIENTFUNDS, Field: "hours",
			Message: fmt.Sprintf("This order may need up to %s %s in escrow, and your %d open orders up to %s; your balance is %s.", need, b.cfg.Denom, open, held, bal)}
	}
	login, err := b.sealLogin(cmd.Order, r.Workload.RegistryAuth)
	if err != nil {
		return nil, err
	}
	stored := r.Workload
	stored.RegistryAuth = nil // sealed apart, in RegistryLogin
	wl, _ := json.Marshal(stored)
	o := &models.Order{RegistryLogin: login, ID: cmd.Order, BuyerID: r.BuyerID, Type: r.Type, OfferID: r.OfferID, Model: r.Model, MinVRAMGiB: r.MinVRAMGiB,
		GPUs: r.Count, MaxPrice: r.MaxPrice, Region: r.Region, MaxRTTms: r.MaxRTTms, Hours: r.Hours, LatencyFirst: r.LatencyFirst,
		Interruptible: r.Interruptible, WorkloadJSON: string(wl), Status: models.OrderOpen, IdempotencyKey: r.IdempotencyKey, IdempotencyHash: hash}
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
	f := &flight{order: *o}
	b.flights[o.ID] = f
	if _, err := b.applyLocked(ctx, cmd); err != nil {
		b.moveOrderLocked(ctx, f, models.OrderFailed, plainFailure(err))
		*o = f.order
		return o, fieldError(err)
	}
	// The flight holds what happened since (matched, or already failed).
	*o = f.order
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
	case errors.Is(err, market.ErrBelowFloor):
		return "Your bid is below this offer's interruptible floor."
	case errors.Is(err, market.ErrNotInterruptible):
		return "This offer does not rent interruptible GPUs."
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
	b.moveOrderLocked(ctx, f, models.OrderCancelled, "")
	return &f.order, nil
}

// ProvingWindow is the part of each epoch a lease's machine spends on
// Proof-of-Compute: the chain's proof window and the epoch it is taken
// from. A GPU prover pauses the buyer's workload for it; the CPU prover
// leaves the workload running. ok is false without a chain or when its
// params cannot be read.
func (b *Broker) ProvingWindow(ctx context.Context) (work, epoch time.Duration, ok bool) {
	if b.cfg.Chain == nil {
		return 0, 0, false
	}
	b.paramsMu.Lock()
	defer b.paramsMu.Unlock()
	if b.paramsAt.IsZero() || b.now().Sub(b.paramsAt) > time.Minute {
		p, err := b.cfg.Chain.EscrowParams(ctx)
		if err != nil {
			return 0, 0, false
		}
		b.proofWork, b.paramsAt = time.Duration(p.ProofWorkSeconds)*time.Second, b.now()
	}
	return b.proofWork, b.cfg.EpochDuration, b.proofWork > 0 && b.cfg.EpochDuration > 0
}
