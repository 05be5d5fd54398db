package models

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/highway-compute/highway"
)

// Disputes: a buyer's claim on a lease, both statements and the arbiter's split.

// Dispute is a buyer's dispute over a lease.
type Dispute struct {
	ID                string `gorm:"primaryKey"`
	LeaseID           string
	BuyerID           string
	ProviderID        string
	Status            string
	BuyerStatement    string
	ProviderStatement string
	BuyerBps          int64
	Resolution        string
	OpenTx            string
	ResolveTx         string
	CreatedAt         time.Time
	ResolvedAt        *time.Time
}

// CreateDispute stores a dispute.
func (s *Store) CreateDispute(ctx context.Context, d *Dispute) error {
	d.CreatedAt = time.Now().UTC()
	return s.DB.WithContext(ctx).Create(d).Error
}

// UpdateDispute writes the given columns of a dispute.
func (s *Store) UpdateDispute(ctx context.Context, id string, cols map[string]any) error {
	return s.DB.WithContext(ctx).Model(&Dispute{}).Where("id = ?", id).Updates(cols).Error
}

// DisputeByID returns a dispute, or ENOTFOUND.
func (s *Store) DisputeByID(ctx context.Context, id string) (*Dispute, error) {
	var d Dispute
	err := s.DB.WithContext(ctx).Where("id = ?", id).Take(&d).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, highway.Errorf(highway.ENOTFOUND, "Dispute not found.")
	}
	return &d, err
}

// DisputesOfLease lists a lease's disputes, oldest first.
func (s *Store) DisputesOfLease(ctx context.Context, leaseID string) ([]Dispute, error) {
	var ds []Dispute
	err := s.DB.WithContext(ctx).Where("lease_id = ?", leaseID).Order("created_at, id").Find(&ds).Error
	return ds, err
}

// Disputes lists disputes: a user's own (as buyer or provider), or with
// userID "" all of them; status "" means any. Oldest first (the queue order).
func (s *Store) Disputes(ctx context.Context, userID, status string, limit int) ([]Dispute, error) {
	q := s.DB.WithContext(ctx).Order("created_at, id").Limit(limit)
	if userID != "" {
		q = q.Where("buyer_id = ? OR provider_id = ?", userID, userID)
	}
	if status != "" {
		q = q.Where("status = ?", status)
	}
	var ds []Dispute
	err := q.Find(&ds).Error
	return ds, err
}
