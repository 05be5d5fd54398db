package models

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/highway-compute/highway"
)

// Orders: a buyer's request, its idempotency key, and its page of history.

// Order statuses (the API's names).
const (
	OrderOpen      = "open"
	OrderMatched   = "matched"
	OrderLeased    = "leased"
	OrderFailed    = "failed"
	OrderCancelled = "cancelled"
	OrderExpired   = "expired"
)

// Order is a buyer's order.
type Order struct {
	ID           string `gorm:"primaryKey"`
	BuyerID      string
	Type         string
	OfferID      string
	Model        string
	MinVRAMGiB   int64 `gorm:"column:min_vram_gib"`
	GPUs         int64 `gorm:"column:gpus"`
	MaxPrice     int64
	Region       string
	MaxRTTms     int64 `gorm:"column:max_rtt_ms"`
	Hours        int64
	ExpiresAt    *time.Time
	LatencyFirst bool
	// Interruptible: a bid for interruptible GPUs (MaxPrice is the bid).
	Interruptible bool
	WorkloadJSON  string `gorm:"column:workload_json"`
	// RegistryLogin is the buyer's login for a private image, sealed
	// (broker/registry.go); empty once the order or its lease has ended.
	RegistryLogin string `gorm:"column:registry_login"`
	Status        string
	Failure       string
	MachineID     string
	Price         int64
	LeaseID       string
	// QuoteNonce is the nonce of the quote the lease is created with
	// (0: none sent yet), recorded before the lease transaction.
	QuoteNonce     int64
	IdempotencyKey string
	// IdempotencyHash is the digest of the request the key was first
	// used with.
	IdempotencyHash string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// IdempotencyTTL is how long an Idempotency-Key is honoured.
const IdempotencyTTL = 24 * time.Hour

// OrderByIdempotencyKey returns the buyer's order placed under key within
// IdempotencyTTL of now, or ENOTFOUND.
func (s *Store) OrderByIdempotencyKey(ctx context.Context, buyerID, key string, now time.Time) (*Order, error) {
	var o Order
	err := s.DB.WithContext(ctx).Where("buyer_id = ? AND idempotency_key = ? AND created_at > ?", buyerID, key, now.Add(-IdempotencyTTL).UTC()).Take(&o).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, highway.Errorf(highway.ENOTFOUND, "No order under that key.")
	}
	return &o, err
}

// CreateOrder stores a new order. With an idempotency key, an order the
// buyer already placed under it (within IdempotencyTTL) is returned
// instead (existing == true), or refused when it was for another request
// (IdempotencyHash differs). The insert comes first: the unique index on
// (buyer, key) is what finds an earlier use, so two requests racing with
// one key place one order, and a key used for the first time costs no
// lookup.
func (s *Store) CreateOrder(ctx context.Context, o *Order) (existing bool, err error) {
	now := time.Now().UTC()
	o.CreatedAt, o.UpdatedAt = now, now
	for attempt := 0; ; attempt++ {
		err = s.DB.WithContext(ctx).Create(o).Error
		if !errors.Is(err, gorm.ErrDuplicatedKey) || o.IdempotencyKey == "" {
			return false, err
		}
		prev, perr := s.OrderByIdempotencyKey(ctx, o.BuyerID, o.IdempotencyKey, now)
		if highway.ErrorCode(perr) != highway.ENOTFOUND || attempt > 0 {
			if perr != nil {
				return false, perr
			}
			if err := prev.RetriedWith(o.IdempotencyHash); err != nil {
				return true, err
			}
			*o = *prev
			return true, nil
		}
		// The key's holder expired: it gives the key up, and this order
		// takes it. Only an expired one: a racing request may have placed
		// an order under the key meanwhile, and clearing that would let
		// this one place a second (a CI failure found it).
		err = s.DB.WithContext(ctx).Model(&Order{}).
			Where("buyer_id = ? AND idempotency_key = ? AND created_at <= ?", o.BuyerID, o.IdempotencyKey, now.Add(-IdempotencyTTL).UTC()).
			Update("idempotency_key", "").Error
		if err != nil {
			return false, err
		}
	}
}

// RetriedWith says whether a request with digest hash may take this order
// as its answer (a retry under the same Idempotency-Key), and refuses a
// key reused for another request.
func (o *Order) RetriedWith(hash string) error {
	if o.IdempotencyHash != hash {
		return &highway.Error{Code: highway.EINVALID, Field: "Idempotency-Key",
			Message: "This Idempotency-Key was used for a different request within the last 24 hours: use a new key."}
	}
	return nil
}

// UpdateOrder writes the order's outcome fields.
func (s *Store) UpdateOrder(ctx context.Context, o *Order) error {
	o.UpdatedAt = time.Now().UTC()
	return s.DB.WithContext(ctx).Model(&Order{}).Where("id = ?", o.ID).Updates(map[string]any{
		"status": o.Status, "failure": o.Failure, "machine_id": o.MachineID, "price": o.Price,
		"lease_id": o.LeaseID, "registry_login": o.RegistryLogin, "updated_at": o.UpdatedAt,
	}).Error
}

// ClearRegistryLogin erases an order's sealed registry login (its lease
// has ended: nothing will pull the image again).
func (s *Store) ClearRegistryLogin(ctx context.Context, orderID string) error {
	return s.DB.WithContext(ctx).Model(&Order{}).Where("id = ? AND registry_login <> ''", orderID).
		Update("registry_login", "").Error
}

// SetOrderQuoteNonce records the nonce of the quote an order's lease is
// about to be created with. The broker sends no lease transaction it
// could not record this for (a deposed leader's write is refused).
func (s *Store) SetOrderQuoteNonce(ctx context.Context, orderID string, nonce int64) error {
	return s.DB.WithContext(ctx).Model(&Order{}).Where("id = ?", orderID).
		Updates(map[string]any{"quote_nonce": nonce, "updated_at": time.Now().UTC()}).Error
}

// OrderByQuoteNonce returns the order whose lease was sent with the quote
// nonce, or ENOTFOUND.
func (s *Store) OrderByQuoteNonce(ctx context.Context, nonce int64) (*Order, error) {
	var o Order
	err := s.DB.WithContext(ctx).Where("quote_nonce = ?", nonce).Take(&o).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, highway.Errorf(highway.ENOTFOUND, "No order was sent with that quote.")
	}
	return &o, err
}

// OrderByID returns an order, or ENOTFOUND.
func (s *Store) OrderByID(ctx context.Context, id string) (*Order, error) {
	var o Order
	err := s.DB.WithContext(ctx).Where("id = ?", id).Take(&o).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, highway.Errorf(highway.ENOTFOUND, "Order not found.")
	}
	return &o, err
}

// OrdersOf lists a buyer's orders, newest first.
func (s *Store) OrdersOf(ctx context.Context, buyerID string, limit int) ([]Order, error) {
	os, _, err := s.OrdersPage(ctx, buyerID, limit, "")
	return os, err
}

// OpenOrdersOf lists up to limit of a buyer's open orders: resting (or
// not yet through the engine) and matched with the lease not yet on
// chain, the orders whose escrow is still to come out of the wallet. Only
// the fields that size an escrow are read.
func (s *Store) OpenOrdersOf(ctx context.Context, buyerID string, limit int) ([]Order, error) {
	var os []Order
	err := s.DB.WithContext(ctx).Select("id", "max_price", "gpus", "hours", "status").
		// The statuses written out, not bound: a planner can then match the
		// partial index orders_buyer_open (SQLite does not with parameters).
		Where("buyer_id = ? AND status IN ('"+OrderOpen+"', '"+OrderMatched+"')", buyerID).
		Order("id").Limit(limit).Find(&os).Error
	return os, err
}

// OrdersPage lists a buyer's orders, newest first, from after cursor (""
// for the newest), and the cursor of the next page ("" at the end). The
// cursor names the last order shown (its creation time and id), so a page
// does not shift when new orders arrive.
func (s *Store) OrdersPage(ctx context.Context, buyerID string, limit int, cursor string) ([]Order, string, error) {
	q := s.DB.WithContext(ctx).Where("buyer_id = ?", buyerID)
	if cursor != "" {
		at, id, err := decodeOrderCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		q = q.Where("created_at < ? OR (created_at = ? AND id < ?)", at, at, id)
	}
	var os []Order
	if err := q.Order("created_at DESC, id DESC").Limit(limit + 1).Find(&os).Error; err != nil {
		return nil, "", err
	}
	next := ""
	if len(os) > limit {
		os = os[:limit]
		last := os[limit-1]
		next = base64.RawURLEncoding.EncodeToString([]byte(last.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + last.ID))
	}
	return os, next, nil
}

func decodeOrderCursor(cursor string) (time.Time, string, error) {
	bad := &highway.Error{Code: highway.EINVALID, Field: "cursor", Message: "Invalid cursor."}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return time.Time{}, "", bad
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	at, err := time.Parse(time.RFC3339Nano, ts)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", bad
	}
	return at.UTC(), id, nil
}

// OrdersWithStatus lists orders in a status (the broker's restart recovery).
func (s *Store) OrdersWithStatus(ctx context.Context, status string) ([]Order, error) {
	var os []Order
	err := s.DB.WithContext(ctx).Where("status = ?", status).Order("created_at, id").Find(&os).Error
	return os, err
}
