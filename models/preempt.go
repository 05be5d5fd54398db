package models

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/highway-compute/highway"
)

// PreemptLease records that the interruptible lease of order orderID was
// preempted by order by and must stop at at. It returns the lease, and
// false when the preemption was already recorded (a replayed event, or
// the indexer and the leader both saw it): only the first records it,
// tells the agent and alerts the buyer.
func (s *Store) PreemptLease(ctx context.Context, orderID, by string, at time.Time) (*Lease, bool, error) {
	res := s.DB.WithContext(ctx).Model(&Lease{}).Where("order_id = ? AND interruptible AND preempt_at IS NULL", orderID).
		Updates(map[string]any{"preempt_at": at.UTC(), "preempted_by": by, "updated_at": time.Now().UTC()})
	if res.Error != nil {
		return nil, false, res.Error
	}
	var l Lease
	err := s.DB.WithContext(ctx).Where("order_id = ?", orderID).Take(&l).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, false, highway.Errorf(highway.ENOTFOUND, "Lease not found.")
	}
	return &l, res.RowsAffected == 1, err
}

// PreemptedDue lists the active leases whose preemption notice ended
// before now, oldest first: they are closed on chain.
func (s *Store) PreemptedDue(ctx context.Context, now time.Time, limit int) ([]Lease, error) {
	var ls []Lease
	err := s.DB.WithContext(ctx).Where("status = ? AND preempt_at IS NOT NULL AND preempt_at <= ?", LeaseActive, now.UTC()).
		Order("preempt_at, id").Limit(limit).Find(&ls).Error
	return ls, err
}

// UnpreemptedInterruptible lists the active interruptible leases not
// marked preempted.
func (s *Store) UnpreemptedInterruptible(ctx context.Context) ([]Lease, error) {
	var ls []Lease
	err := s.DB.WithContext(ctx).Where("status = ? AND interruptible AND preempt_at IS NULL", LeaseActive).Order("id").Find(&ls).Error
	return ls, err
}
