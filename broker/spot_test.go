package broker

import (
	"context"
	"testing"
	"time"

	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

// TestPreemptionRecordedOnceAndRecovered: a preemption the engine applies
// is recorded on the lease once (a repeated event neither re-times it nor
// alerts twice), and one a previous leader applied without recording it
// (it stopped in between) is found by the next leader, which preempts the
// lease then; a lease the engine still holds is left alone.
func TestPreemptionRecordedOnceAndRecovered(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, store *models.Store) {
		ctx := context.Background()
		cfg := Config{Store: store, Regions: []string{"us-east"}, Models: []string{"H100"}}
		b, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		u := &models.User{Email: "spot@example.com", PasswordHash: "x", IsBuyer: true}
		if err := store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		apply := func(c market.Command) []market.Event {
			t.Helper()
			evs, err := b.apply(ctx, c)
			if err != nil {
				t.Fatalf("%+v: %v", c, err)
			}
			return evs
		}
		machine := func(id string) {
			apply(market.Command{Kind: market.KindUpsertMachine, Machine: id, Provider: "p1", Model: "H100", GPUs: 1, VRAMGiB: 80,
				Region: "us-east", Price: 2_000_000, Verified: true, RTTms: []uint16{5}, SpotFloor: 1_000_000, NoticeMs: 10_000})
		}
		order := func(id string, spot bool, price int64) []market.Event {
			return apply(market.Command{Kind: market.KindPlaceOrder, Order: id, Buyer: u.ID, Type: market.FillOrKill, Model: "H100", GPUs: 1,
				Region: "us-east", Price: price, MaxRTTms: 100, Hours: 1, Interruptible: spot})
		}
		lease := func(id, orderID string) {
			if err := store.CreateLease(ctx, &models.Lease{ID: id, OrderID: orderID, BuyerID: u.ID, ProviderID: u.ID, MachineID: "m", Model: "H100",
				GPUs: 1, Interruptible: true, Status: models.LeaseActive, PricePerEpoch: "5", EpochsTotal: 6, Remaining: "0", Pending: "0",
				Frozen: "0", Paid: "0", Refunded: "0", Fees: "0", EndsAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		read := func(id string) *models.Lease {
			l, err := store.LeaseByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}

		// Recorded once.
		machine("m1")
		order("spot-1", true, 1_500_000)
		apply(market.Command{Kind: market.KindConfirmLease, Order: "spot-1"})
		lease("l1", "spot-1")
		evs := order("od-1", false, 2_000_000)
		if len(evs) < 1 || evs[0].Kind != market.EvPreempted || evs[0].Order != "spot-1" {
			t.Fatalf("events %v", evs)
		}
		var l *models.Lease
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if l = read("l1"); l.PreemptAt != nil || time.Now().After(deadline) {
				break
			}
		}
		if l.PreemptAt == nil || l.PreemptedBy != "od-1" || l.PreemptAt.UnixMilli() != evs[0].At {
			t.Fatalf("preemption recorded as %v by %q, want %d by od-1", l.PreemptAt, l.PreemptedBy, evs[0].At)
		}
		again := evs[0]
		again.At += 60_000
		b.preempt(ctx, again)
		if l2 := read("l1"); !l2.PreemptAt.Equal(*l.PreemptAt) {
			t.Fatalf("a repeated event moved the notice to %v", l2.PreemptAt)
		}
		// The first record's alert follows its write: wait for it, then
		// make sure the repeat added none.
		var n int64
		for deadline := time.Now().Add(10 * time.Second); n == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if n, err = store.UnreadNotifications(ctx, u.ID); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(200 * time.Millisecond)
		if n, err = store.UnreadNotifications(ctx, u.ID); err != nil || n != 1 {
			t.Fatalf("%d alerts (%v), want 1", n, err)
		}

		// Preempted before its row was written (in the command that
		// confirmed it, say): recorded, with its own notice, once the row
		// lands.
		machine("m2")
		machine("m3")
		order("spot-2", true, 1_500_000)
		apply(market.Command{Kind: market.KindConfirmLease, Order: "spot-2"})
		order("spot-3", true, 1_500_000)
		apply(market.Command{Kind: market.KindConfirmLease, Order: "spot-3"})
		lease("l3", "spot-3")
		// m2 was listed first: the on-demand order takes it, preempting spot-2.
		if evs = order("od-2", false, 2_000_000); evs[0].Kind != market.EvPreempted || evs[0].Order != "spot-2" {
			t.Fatalf("events %v", evs)
		}
		time.Sleep(200 * time.Millisecond)
		lease("l2", "spot-2")
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if l = read("l2"); l.PreemptAt != nil || time.Now().After(deadline) {
				break
			}
		}
		if l.PreemptAt == nil || l.PreemptAt.UnixMilli() != evs[0].At || l.PreemptedBy != "od-2" {
			t.Fatalf("a preemption before the row: recorded %v by %q, want %d by od-2", l.PreemptAt, l.PreemptedBy, evs[0].At)
		}

		// Applied but never recorded (the leader stopped in between): an
		// active interruptible lease the engine does not hold. The next
		// leader preempts it with the default notice; a held lease stays.
		lease("l4", "spot-gone")
		next, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		before := time.Now()
		next.recoverPreemptions(ctx)
		if p := read("l4"); p.PreemptAt == nil || p.PreemptAt.Before(before.Add(market.DefaultNoticeMs*time.Millisecond-time.Second)) {
			t.Fatalf("the unrecorded preemption was not recovered with a full notice: %v", p.PreemptAt)
		}
		if p := read("l3"); p.PreemptAt != nil {
			t.Fatalf("lease l3, still held, was preempted at %v", p.PreemptAt)
		}
	})
}
