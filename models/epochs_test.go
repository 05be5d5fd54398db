package models_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

// A provider's settled epochs come back newest first with their chain
// lease id, only its own and only since the given time; re-indexing an
// epoch (same lease and number) updates it instead of adding one.
func TestProviderEpochs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		var ids [3]string
		for i := range ids {
			u := &models.User{Email: fmt.Sprintf("u%d@example.com", i), PasswordHash: "h", IsBuyer: true, IsProvider: true}
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			ids[i] = u.ID
		}
		buyer, prov, other := ids[0], ids[1], ids[2]
		now := time.Now().UTC().Truncate(time.Second)
		for i, p := range []string{prov, other} {
			l := &models.Lease{ID: fmt.Sprintf("lease-%d", i), ChainLeaseID: uint64(10 + i), BuyerID: buyer, ProviderID: p, MachineID: "m",
				Model: "H100", GPUs: 1, Status: models.LeaseActive, PricePerEpoch: "5", Remaining: "0", Pending: "0", Frozen: "0",
				Paid: "0", Refunded: "0", Fees: "0", EndsAt: now}
			if err := s.CreateLease(ctx, l); err != nil {
				t.Fatal(err)
			}
			for n := int64(0); n < 3; n++ {
				at := now.Add(time.Duration(n-3) * time.Hour)
				if err := s.UpsertEpoch(ctx, models.LeaseEpoch{LeaseID: l.ID, N: n, Status: "cleared", Amount: "5", SettledAt: &at}); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Epoch 2 re-indexed as missed.
		at := now.Add(-time.Hour)
		if err := s.UpsertEpoch(ctx, models.LeaseEpoch{LeaseID: "lease-0", N: 2, Status: "missed", Amount: "5", SettledAt: &at}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ProviderEpochs(ctx, prov, now.Add(-150*time.Minute), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].N != 2 || got[0].Status != "missed" || got[1].N != 1 || got[0].ChainLeaseID != 10 ||
			got[0].SettledAt == nil || !got[0].SettledAt.Equal(at) {
			t.Fatalf("provider epochs = %+v", got)
		}
		counts, err := s.EpochCounts(ctx, now.Add(-24*time.Hour), "")
		if err != nil {
			t.Fatal(err)
		}
		if len(counts) != 1 || counts[0].MachineID != "m" || counts[0].Cleared != 5 || counts[0].Missed != 1 {
			t.Fatalf("epoch counts = %+v", counts)
		}
	})
}
