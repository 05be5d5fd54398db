package broker

import (
	"context"
	"slices"
	"testing"

	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

// TestOrderStateMachine: every move between two statuses is taken exactly
// when orderNext allows it; the row follows, and an ended order leaves the
// flights (so nothing can move it again: a lease cannot also fail, a
// cancelled order cannot be leased).
func TestOrderStateMachine(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, store *models.Store) {
		ctx := context.Background()
		b, err := New(ctx, Config{Store: store, Regions: []string{"us-east"}})
		if err != nil {
			t.Fatal(err)
		}
		u := &models.User{Email: "sm@example.com", Name: "S", PasswordHash: "h", IsBuyer: true}
		if err := store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		all := []string{models.OrderOpen, models.OrderMatched, models.OrderLeased, models.OrderFailed, models.OrderCancelled, models.OrderExpired}
		for _, from := range all {
			for _, to := range all {
				o := &models.Order{ID: models.NewID(), BuyerID: u.ID, Type: "fok", Model: "H100", GPUs: 1, Hours: 1, Status: from}
				if _, err := store.CreateOrder(ctx, o); err != nil {
					t.Fatal(err)
				}
				f := &flight{order: *o}
				b.mu.Lock()
				b.flights[o.ID] = f
				moved := b.moveOrderLocked(ctx, f, to, "why")
				_, live := b.flights[o.ID]
				b.mu.Unlock()
				want := slices.Contains(orderNext[from], to)
				if moved != want {
					t.Errorf("%s → %s: moved = %v, want %v", from, to, moved, want)
					continue
				}
				row, err := store.OrderByID(ctx, o.ID)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case !moved && (row.Status != from || f.order.Status != from):
					t.Errorf("%s → %s refused, but the order is now %s (row %s)", from, to, f.order.Status, row.Status)
				case moved && to != models.OrderLeased && row.Status != to:
					// A leased order's row is written with its lease.
					t.Errorf("%s → %s: row says %s", from, to, row.Status)
				case moved && live != (to == models.OrderMatched || to == models.OrderOpen):
					t.Errorf("%s → %s: still in flight = %v", from, to, live)
				}
			}
		}
	})
}

// TestLapseDuringLeaseCreation: a reservation that lapses while the lease
// transaction is on its way does not end the order with "nothing was
// charged": createLease owns the ending (a lease created after the lapse
// is closed and the order fails with the escrow returned). A lapse before
// the quote was answered fails the order at once.
func TestLapseDuringLeaseCreation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, store *models.Store) {
		ctx := context.Background()
		b, err := New(ctx, Config{Store: store, Regions: []string{"us-east"}})
		if err != nil {
			t.Fatal(err)
		}
		u := &models.User{Email: "lapse@example.com", Name: "L", PasswordHash: "h", IsBuyer: true}
		if err := store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		for _, answered := range []bool{true, false} {
			o := &models.Order{ID: models.NewID(), BuyerID: u.ID, Type: "fok", Model: "H100", GPUs: 1, Hours: 1, Status: models.OrderMatched}
			if _, err := store.CreateOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
			f := &flight{order: *o, answered: answered}
			b.mu.Lock()
			b.flights[o.ID] = f
			b.onEventLocked(ctx, market.Event{Kind: market.EvReservationExpired, Order: o.ID})
			_, live := b.flights[o.ID]
			b.mu.Unlock()
			if live != answered || (f.order.Status == models.OrderFailed) == answered {
				t.Errorf("answered=%v: in flight %v, status %s", answered, live, f.order.Status)
			}
		}
	})
}
