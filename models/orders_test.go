package models_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

// TestIdempotencyKeyRace is the double-order attack at the store: many
// requests racing with one key place one order, and every other gets that
// order back; a key reused for another request is refused; a key older
// than IdempotencyTTL is given up and can place a new order.
func TestIdempotencyKeyRace(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		u := &models.User{Email: "racer@example.com", Name: "R", PasswordHash: "h", IsBuyer: true}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		order := func(hash string) *models.Order {
			return &models.Order{ID: models.NewID(), BuyerID: u.ID, Type: "fok", Model: "H100", GPUs: 1, MaxPrice: 1, Hours: 1,
				Status: models.OrderOpen, IdempotencyKey: "k1", IdempotencyHash: hash}
		}
		const racers = 16
		var wg sync.WaitGroup
		var mu sync.Mutex
		created, ids := 0, map[string]int{}
		for range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := order("same")
				existing, err := s.CreateOrder(ctx, o)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				if !existing {
					created++
				}
				ids[o.ID]++
			}()
		}
		wg.Wait()
		if created != 1 || len(ids) != 1 {
			t.Fatalf("%d racing requests with one key: %d orders created, ids %v; want one", racers, created, ids)
		}
		if _, err := s.CreateOrder(ctx, order("other")); highway.ErrorField(err) != "Idempotency-Key" {
			t.Fatalf("key reused for another request: %v, want refused", err)
		}
		// Age the first use past the TTL: the key is free again.
		var first string
		for id := range ids {
			first = id
		}
		if err := s.DB.Model(&models.Order{}).Where("id = ?", first).Update("created_at", time.Now().Add(-models.IdempotencyTTL-time.Minute).UTC()).Error; err != nil {
			t.Fatal(err)
		}
		again := order("other")
		if existing, err := s.CreateOrder(ctx, again); err != nil || existing || again.ID == first {
			t.Fatalf("expired key: existing=%v err=%v id=%s, want a new order", existing, err, again.ID)
		}
	})
}

// TestOpenOrdersOf: a buyer's open and matched orders, no one else's and
// none that ended, up to the limit; and the lookup goes through the
// partial index on SQLite (the plan names it), not the buyer's history.
func TestOpenOrdersOf(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		var buyers [2]string
		for i := range buyers {
			u := &models.User{Email: "open" + string(rune('a'+i)) + "@example.com", Name: "O", PasswordHash: "h", IsBuyer: true}
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			buyers[i] = u.ID
		}
		want := map[string]bool{}
		for i, st := range []string{models.OrderOpen, models.OrderMatched, models.OrderLeased, models.OrderFailed,
			models.OrderCancelled, models.OrderExpired, models.OrderOpen, models.OrderMatched} {
			for b, buyer := range buyers {
				o := &models.Order{ID: models.NewID(), BuyerID: buyer, Type: "gtc", Model: "H100", GPUs: int64(1 + i), MaxPrice: 7, Hours: 3, Status: st}
				if _, err := s.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
				if b == 0 && (st == models.OrderOpen || st == models.OrderMatched) {
					want[o.ID] = true
				}
			}
		}
		// The statement OpenOrdersOf runs, for its query plan below.
		var query string
		var vars []any
		if err := s.DB.Callback().Query().After("gorm:query").Register("test:open_orders_sql", func(db *gorm.DB) {
			query, vars = db.Statement.SQL.String(), db.Statement.Vars
		}); err != nil {
			t.Fatal(err)
		}
		got, err := s.OpenOrdersOf(ctx, buyers[0], 10)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DB.Callback().Query().Remove("test:open_orders_sql"); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d open orders, want %d", len(got), len(want))
		}
		for _, o := range got {
			if !want[o.ID] || o.MaxPrice != 7 || o.Hours != 3 || o.GPUs == 0 {
				t.Fatalf("open order %+v: not one of the buyer's open ones, or its escrow fields not read", o)
			}
		}
		if got, err := s.OpenOrdersOf(ctx, buyers[0], 3); err != nil || len(got) != 3 {
			t.Fatalf("limit 3: %d orders, %v", len(got), err)
		}
		if s.DB.Name() == "sqlite" {
			var plan []struct {
				Detail string
			}
			if err := s.DB.Raw("EXPLAIN QUERY PLAN "+query, vars...).Scan(&plan).Error; err != nil {
				t.Fatal(err)
			}
			if len(plan) == 0 || !strings.Contains(plan[0].Detail, "orders_buyer_open") {
				t.Fatalf("query plan %+v: not the partial index orders_buyer_open", plan)
			}
		}
	})
}
