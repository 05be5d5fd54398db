package models_test

import (
	"context"
	"sync"
	"testing"
	"time"

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
