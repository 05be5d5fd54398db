package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

// GrowLease moves a lease's epochs and end only from the count its caller
// read: the extension's own refresh and the indexer's both reconcile an
// extension, and only one of them may re-post the start. AutoExtendDue
// lists active leases with auto-extend on that end before the given time.
func TestGrowLeaseAndAutoExtendDue(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		buyer := &models.User{Email: "b@example.com", PasswordHash: "h", IsBuyer: true}
		prov := &models.User{Email: "p@example.com", PasswordHash: "h", IsProvider: true}
		for _, u := range []*models.User{buyer, prov} {
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		base := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
		mk := func(id string, chainID uint64, status string, hours int64, ends time.Time) {
			l := &models.Lease{ID: id, ChainLeaseID: chainID, BuyerID: buyer.ID, ProviderID: prov.ID, MachineID: "m", Model: "H100", GPUs: 1,
				Status: status, PricePerEpoch: "5", EpochsTotal: 6, Remaining: "0", Pending: "0", Frozen: "0", Paid: "0", Refunded: "0", Fees: "0",
				EndsAt: ends, AutoExtendHours: hours}
			if err := s.CreateLease(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		mk("a", 1, models.LeaseActive, 2, base.Add(10*time.Minute))
		mk("b", 2, models.LeaseActive, 0, base.Add(5*time.Minute)) // auto-extend off
		mk("c", 3, models.LeaseClosed, 1, base.Add(5*time.Minute)) // closed
		mk("d", 4, models.LeaseActive, 1, base.Add(3*time.Hour))   // not due yet
		mk("e", 5, models.LeaseActive, 1, base.Add(time.Minute))   // due first

		due, err := s.AutoExtendDue(ctx, base.Add(15*time.Minute), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) != 2 || due[0].ID != "e" || due[1].ID != "a" {
			t.Fatalf("due = %+v, want e then a", due)
		}

		later := base.Add(70 * time.Minute)
		if moved, err := s.GrowLease(ctx, "a", 6, 12, later); err != nil || !moved {
			t.Fatalf("first grow: %v %v", moved, err)
		}
		if moved, err := s.GrowLease(ctx, "a", 6, 12, later.Add(time.Hour)); err != nil || moved {
			t.Fatalf("second grow from the same count moved it: %v %v", moved, err)
		}
		got, err := s.LeaseByID(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if got.EpochsTotal != 12 || !got.EndsAt.Equal(later) {
			t.Fatalf("after growing: %d epochs, ends %v; want 12, %v", got.EpochsTotal, got.EndsAt, later)
		}
	})
}

// The depth's queries on both databases: resting bids are open gtc orders
// of the model (and region); matches are the model's leases since a time,
// newest first, filtered by their order's region.
func TestDepthQueries(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		u := &models.User{Email: "b@example.com", PasswordHash: "h", IsBuyer: true}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		for i, o := range []struct {
			id, typ, region, status string
			spot                    bool
		}{
			{"o1", "gtc", "us-east", models.OrderOpen, false}, {"o2", "gtc", "eu-west", models.OrderOpen, false},
			{"o3", "fok", "us-east", models.OrderLeased, false}, {"o4", "gtc", "us-east", models.OrderCancelled, false},
			{"o5", "gtc", "us-east", models.OrderOpen, true}, // an interruptible bid: not in the depth
		} {
			if _, err := s.CreateOrder(ctx, &models.Order{ID: o.id, BuyerID: u.ID, Type: o.typ, Model: "H100", GPUs: 1, MaxPrice: int64(100 * (i + 1)),
				Region: o.region, Hours: 1, WorkloadJSON: "{}", Status: o.status, IdempotencyKey: o.id, Interruptible: o.spot}); err != nil {
				t.Fatal(err)
			}
		}
		bids, err := s.RestingBids(ctx, "H100", "us-east", 10)
		if err != nil || len(bids) != 1 || bids[0].ID != "o1" {
			t.Fatalf("us-east bids %+v %v", bids, err)
		}
		if all, err := s.RestingBids(ctx, "H100", "", 10); err != nil || len(all) != 2 || all[0].ID != "o2" {
			t.Fatalf("all bids %+v %v, want o2 (higher) then o1", all, err)
		}
		for i, orderID := range []string{"o3", "o2", "o5"} {
			l := &models.Lease{ID: "l" + orderID, ChainLeaseID: uint64(i + 1), OrderID: orderID, BuyerID: u.ID, ProviderID: u.ID, MachineID: "m",
				Model: "H100", GPUs: int64(i + 1), PricePerHour: int64(1000 * (i + 1)), PricePerEpoch: "1", Status: models.LeaseActive, Interruptible: orderID == "o5",
				Remaining: "0", Pending: "0", Frozen: "0", Paid: "0", Refunded: "0", Fees: "0", EndsAt: time.Now()}
			if err := s.CreateLease(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		since := time.Now().Add(-time.Hour)
		if ms, err := s.Matches(ctx, "H100", "", since, 10); err != nil || len(ms) != 2 {
			t.Fatalf("matches %+v %v", ms, err)
		}
		ms, err := s.Matches(ctx, "H100", "us-east", since, 10)
		if err != nil || len(ms) != 1 || ms[0].GPUs != 1 || ms[0].PricePerHour != 1000 || ms[0].At.IsZero() {
			t.Fatalf("us-east matches %+v %v", ms, err)
		}
		if ms, err := s.Matches(ctx, "H100", "", time.Now().Add(time.Hour), 10); err != nil || len(ms) != 0 {
			t.Fatalf("matches after now %+v %v", ms, err)
		}
	})
}
