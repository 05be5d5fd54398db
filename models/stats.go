package models

import (
	"context"
	"time"

	"gorm.io/gorm/clause"

	"github.com/highway-compute/highway"
)

// SnapshotTotal is the model name of a snapshot's network-wide row.
const SnapshotTotal = "*"

// MarketSnapshot is the market at one moment, for one model (or the
// network total, model SnapshotTotal).
type MarketSnapshot struct {
	At           time.Time `gorm:"primaryKey"`
	Model        string    `gorm:"primaryKey"`
	GPUsOnline   int64     `gorm:"column:gpus_online"`
	GPUsFree     int64     `gorm:"column:gpus_free"`
	MedianPrice  int64
	H100eMilli   int64 `gorm:"column:h100e_milli"`
	LeasesActive int64
}

// AddSnapshots stores one snapshot's rows.
func (s *Store) AddSnapshots(ctx context.Context, rows []MarketSnapshot) error {
	if len(rows) == 0 {
		return nil
	}
	// A leader that took over mid-interval records the same instant the
	// old one did: the newer figures replace the older.
	return s.DB.WithContext(ctx).Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "at"}, {Name: "model"}}, UpdateAll: true,
	}).Create(&rows).Error
}

// Snapshots returns a model's (or the total's) snapshots since a time, oldest first.
func (s *Store) Snapshots(ctx context.Context, model string, since time.Time) ([]MarketSnapshot, error) {
	var out []MarketSnapshot
	err := s.DB.WithContext(ctx).Where("model = ? AND at >= ?", model, since.UTC()).Order("at").Limit(10_000).Find(&out).Error
	return out, err
}

// NetworkTotals are the lease figures of the network dashboard.
type NetworkTotals struct {
	LeasesActive    int64
	EpochsCleared   int64
	EpochsMissed    int64
	EscrowedPerHour int64 // sum of active leases' price per hour × GPUs
}

// AdminCounts are what an admin checks first.
type AdminCounts struct {
	Users, OpenDisputes, SuspendedMachines, FailingVerification int64
	// OldestDispute is when the oldest open dispute was opened (nil: none).
	OldestDispute *time.Time
}

// AdminOverview counts users, open disputes, suspended machines and
// machines whose verification failed.
func (s *Store) AdminOverview(ctx context.Context) (AdminCounts, error) {
	var a AdminCounts
	db := s.DB.WithContext(ctx)
	for _, q := range []struct {
		dst   *int64
		model any
		where string
	}{
		{&a.Users, &User{}, "1 = 1"},
		{&a.OpenDisputes, &Dispute{}, "status = 'open'"},
		{&a.SuspendedMachines, &Machine{}, "suspended_at IS NOT NULL"},
		{&a.FailingVerification, &Machine{}, "verified_at IS NULL AND verify_error <> ''"},
	} {
		if err := db.Model(q.model).Where(q.where).Count(q.dst).Error; err != nil {
			return a, err
		}
	}
	if a.OpenDisputes > 0 {
		var d Dispute
		if err := db.Where("status = 'open'").Order("created_at, id").Take(&d).Error; err != nil {
			return a, err
		}
		a.OldestDispute = &d.CreatedAt
	}
	return a, nil
}

// MachinesNeedingAttention lists machines that are suspended or failed
// their verification, most recently changed first.
func (s *Store) MachinesNeedingAttention(ctx context.Context, limit int) ([]Machine, error) {
	var ms []Machine
	err := s.DB.WithContext(ctx).Where("suspended_at IS NOT NULL OR (verified_at IS NULL AND verify_error <> '')").
		Order("updated_at DESC, id").Limit(limit).Find(&ms).Error
	return ms, err
}

// Totals counts leases and settled epochs.
func (s *Store) Totals(ctx context.Context) (NetworkTotals, error) {
	var t NetworkTotals
	db := s.DB.WithContext(ctx)
	if err := db.Model(&Lease{}).Where("status = ?", LeaseActive).Count(&t.LeasesActive).Error; err != nil {
		return t, err
	}
	if err := db.Model(&LeaseEpoch{}).Where("status = ?", "cleared").Count(&t.EpochsCleared).Error; err != nil {
		return t, err
	}
	if err := db.Model(&LeaseEpoch{}).Where("status = ?", "missed").Count(&t.EpochsMissed).Error; err != nil {
		return t, err
	}
	var sum *int64
	if err := db.Model(&Lease{}).Where("status = ?", LeaseActive).Select("SUM(price_per_hour * gpus)").Scan(&sum).Error; err != nil {
		return t, err
	}
	if sum != nil {
		t.EscrowedPerHour = *sum
	}
	return t, nil
}

// Volumes sums, over every lease, the escrow it locked and what the
// provider was paid (amounts are decimal strings, summed exactly).
func (s *Store) Volumes(ctx context.Context) (escrowed, paid highway.Total, err error) {
	type row struct {
		PricePerEpoch string
		EpochsTotal   int64
		Paid          string
	}
	var rows []row
	if err = s.DB.WithContext(ctx).Model(&Lease{}).Select("price_per_epoch, epochs_total, paid").Scan(&rows).Error; err != nil {
		return escrowed, paid, err
	}
	for _, r := range rows {
		if p, ok := highway.ParseTotal(r.PricePerEpoch); ok {
			escrowed = escrowed.Add(p.Mul(r.EpochsTotal))
		}
		if p, ok := highway.ParseTotal(r.Paid); ok {
			paid = paid.Add(p)
		}
	}
	return escrowed, paid, nil
}

// RestingBids lists the open resting (gtc) on-demand orders for a model,
// in one region when region is set: the bid side of the market's depth
// (resting interruptible bids are a side market: they take idle GPUs at
// the providers' floors, not the asks).
func (s *Store) RestingBids(ctx context.Context, model, region string, limit int) ([]Order, error) {
	q := s.DB.WithContext(ctx).Select("id", "gpus", "max_price", "region").
		Where("status = ? AND type = ? AND model = ? AND NOT interruptible", OrderOpen, "gtc", model)
	if region != "" {
		q = q.Where("region = ?", region)
	}
	var out []Order
	err := q.Order("max_price DESC, id").Limit(limit).Find(&out).Error
	return out, err
}

// Match is a lease as the market's depth shows it: when it was made, how
// many GPUs, at what price per GPU-hour.
type Match struct {
	At           time.Time `gorm:"column:created_at"`
	GPUs         int64     `gorm:"column:gpus"`
	PricePerHour int64     `gorm:"column:price_per_hour"`
}

// Matches lists the on-demand leases of a model made since a time
// (interruptible ones price a different product), newest first;
// region, when set, is the region their orders asked for.
func (s *Store) Matches(ctx context.Context, model, region string, since time.Time, limit int) ([]Match, error) {
	q := s.DB.WithContext(ctx).Table("leases").Select("leases.created_at, leases.gpus, leases.price_per_hour").
		Where("leases.model = ? AND leases.created_at >= ? AND NOT leases.interruptible", model, since.UTC())
	if region != "" {
		q = q.Joins("JOIN orders ON orders.id = leases.order_id").Where("orders.region = ?", region)
	}
	var out []Match
	err := q.Order("leases.created_at DESC, leases.id DESC").Limit(limit).Scan(&out).Error
	return out, err
}
