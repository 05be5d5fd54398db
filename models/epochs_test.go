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

// Hourly sums of a provider's epochs are exact whatever the amounts'
// size: amounts up to 18 digits are summed in two nine-digit halves, and
// longer ones come back whole; the hours bucket by settling time in UTC,
// on both databases, with fractional seconds.
func TestProviderHours(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		buyer := &models.User{Email: "b@example.com", PasswordHash: "h", IsBuyer: true}
		prov := &models.User{Email: "p@example.com", PasswordHash: "h", IsProvider: true}
		for _, u := range []*models.User{buyer, prov} {
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		base := time.Date(2026, 3, 10, 6, 0, 0, 0, time.UTC)
		l := &models.Lease{ID: "lease", ChainLeaseID: 1, BuyerID: buyer.ID, ProviderID: prov.ID, MachineID: "m", Model: "H100", GPUs: 1,
			Status: models.LeaseActive, PricePerEpoch: "5", Remaining: "0", Pending: "0", Frozen: "0", Paid: "0", Refunded: "0", Fees: "0", EndsAt: base}
		if err := s.CreateLease(ctx, l); err != nil {
			t.Fatal(err)
		}
		epochs := []struct {
			at             time.Duration
			status, amount string
		}{
			{0, "cleared", "7"},
			{59*time.Minute + 59*time.Second + 999_999_000, "cleared", "999999999999999999"}, // 18 digits, still 06:00
			{time.Hour, "cleared", "1000000000"},                                             // 10 digits
			{time.Hour + time.Minute, "missed", "400"},                                       // refunded: not earned
			{time.Hour + 2*time.Minute, "cleared", "123456789012345678901234567890"},         // 30 digits
			{time.Hour + 3*time.Minute, "cleared", ""},
			{-time.Second, "cleared", "5"},  // before the range
			{2 * time.Hour, "cleared", "5"}, // at its end: out
		}
		for n, e := range epochs {
			at := base.Add(e.at)
			if err := s.UpsertEpoch(ctx, models.LeaseEpoch{LeaseID: l.ID, N: int64(n), Status: e.status, Amount: e.amount, SettledAt: &at}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.ProviderHours(ctx, prov.ID, base, base.Add(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		h := base.Unix() / 3600
		want := []models.ProviderHour{
			{Hour: h, Cleared: 2, EarnedHi: 999_999_999, EarnedLo: 1_000_000_006},
			{Hour: h + 1, Cleared: 3, Missed: 1, EarnedHi: 1, EarnedLo: 0, Long: []string{"123456789012345678901234567890"}},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("provider hours\n got %+v\nwant %+v", got, want)
		}
		if other, err := s.ProviderHours(ctx, buyer.ID, base, base.Add(2*time.Hour)); err != nil || len(other) != 0 {
			t.Fatalf("another user's hours: %+v, %v", other, err)
		}
	})
}

// An epoch's row appears when its proof lands (pending, with the proof's
// transaction) and takes the verdict from the judging block, which comes
// without a transaction: the proof's hash stays, the reason is kept, and a
// late re-read of the landing block does not undo the verdict.
func TestPendingEpochThenVerdict(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		u := &models.User{Email: "p@example.com", PasswordHash: "h", IsBuyer: true, IsProvider: true}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Second)
		l := &models.Lease{ID: "lease-p", ChainLeaseID: 7, BuyerID: u.ID, ProviderID: u.ID, MachineID: "m", Model: "H100", GPUs: 1,
			Status: models.LeaseActive, PricePerEpoch: "5", Remaining: "0", Pending: "0", Frozen: "0", Paid: "0", Refunded: "0", Fees: "0", EndsAt: now}
		if err := s.CreateLease(ctx, l); err != nil {
			t.Fatal(err)
		}
		landed := models.LeaseEpoch{LeaseID: l.ID, N: 0, Status: "pending", ValidNonces: 2900, Required: 2730, TxHash: "PROOFTX", Height: 10}
		if err := s.AddPendingEpoch(ctx, landed); err != nil {
			t.Fatal(err)
		}
		verdict := models.LeaseEpoch{LeaseID: l.ID, N: 0, Status: "missed", ValidNonces: 2900, Required: 2730, Amount: "5", Height: 12,
			SettledAt: &now, Reason: "proof rejected: poc: nonce digest not under target: nonce 17"}
		if err := s.UpsertEpoch(ctx, verdict); err != nil {
			t.Fatal(err)
		}
		if err := s.AddPendingEpoch(ctx, landed); err != nil { // the landing block read again
			t.Fatal(err)
		}
		eps, err := s.Epochs(ctx, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(eps) != 1 || eps[0].Status != "missed" || eps[0].TxHash != "PROOFTX" || eps[0].Height != 12 ||
			eps[0].Reason != verdict.Reason || eps[0].ValidNonces != 2900 {
			t.Fatalf("epochs = %+v", eps)
		}
	})
}
