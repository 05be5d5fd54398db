package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

// An automatic extension decides on the lease as it is under the claim,
// not as the loop's pass read it: one extended by hand meanwhile, or
// whose auto-extend was turned off or changed, is not extended (nothing
// reaches the chain: this broker has none, and would fail if it did).
func TestAutoExtendRechecksUnderTheClaim(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, store *models.Store) {
		ctx := context.Background()
		b, err := New(ctx, Config{Store: store, Regions: []string{"us-east"}})
		if err != nil {
			t.Fatal(err)
		}
		u := &models.User{Email: "ae@example.com", Name: "A", PasswordHash: "h", IsBuyer: true}
		if err := store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		l := &models.Lease{ID: "lease-ae", ChainLeaseID: 9, BuyerID: u.ID, ProviderID: u.ID, MachineID: "m", Model: "H100", GPUs: 1,
			Status: models.LeaseActive, PricePerEpoch: "5", EpochsTotal: 6, Remaining: "0", Pending: "0", Frozen: "0", Paid: "0",
			Refunded: "0", Fees: "0", EndsAt: now.Add(10 * time.Minute), AutoExtendHours: 2}
		if err := store.CreateLease(ctx, l); err != nil {
			t.Fatal(err)
		}
		due := autoDue(2, now.Add(15*time.Minute))
		for name, change := range map[string]map[string]any{
			"extended by hand meanwhile": {"ends_at": now.Add(3 * time.Hour)},
			"turned off meanwhile":       {"auto_extend_hours": 0},
			"changed meanwhile":          {"auto_extend_hours": 4},
		} {
			if err := store.UpdateLease(ctx, l.ID, change); err != nil {
				t.Fatal(err)
			}
			if _, err := b.extendLease(ctx, u.ID, l.ID, 2, due); !errors.Is(err, errNotDue) {
				t.Errorf("%s: %v, want errNotDue", name, err)
			}
			if err := store.UpdateLease(ctx, l.ID, map[string]any{"ends_at": l.EndsAt, "auto_extend_hours": 2}); err != nil {
				t.Fatal(err)
			}
		}
		// As read, it is due.
		cur, err := store.LeaseByID(ctx, l.ID)
		if err != nil || !due(cur) {
			t.Fatalf("the lease as created is not due: %+v %v", cur, err)
		}
	})
}
