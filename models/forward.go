package models

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/highway-compute/highway"
)

// PortForward is an HTTP port of a lease's workload its buyer reaches at
// its own origin, https://<Slug>.<ports domain>/ (broker/forward.go).
type PortForward struct {
	ID          string `gorm:"primaryKey"`
	LeaseID     string
	UserID      string
	Port        int
	Slug        string
	CreatedAt   time.Time
	ClosedAt    *time.Time
	CloseReason string
}

// CreatePortForward records an open forward. A port already forwarded
// for the lease is ECONFLICT (the open-forward index decides, so two
// racing opens cannot both win).
func (s *Store) CreatePortForward(ctx context.Context, f *PortForward) error {
	err := s.DB.WithContext(ctx).Create(f).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return &highway.Error{Code: highway.ECONFLICT, Field: "port", Message: "This port is already forwarded."}
	}
	return err
}

// PortForwardBySlug is the forward a ports-domain host names, open or
// closed; ENOTFOUND when none does.
func (s *Store) PortForwardBySlug(ctx context.Context, slug string) (*PortForward, error) {
	var f PortForward
	err := s.DB.WithContext(ctx).Where("slug = ?", slug).Take(&f).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, highway.Errorf(highway.ENOTFOUND, "No forwarded port here.")
	}
	return &f, err
}

// PortForwards lists a lease's forwards, open first, then newest first.
func (s *Store) PortForwards(ctx context.Context, leaseID string, limit int) ([]PortForward, error) {
	var out []PortForward
	err := s.DB.WithContext(ctx).Where("lease_id = ?", leaseID).
		Order("CASE WHEN closed_at IS NULL THEN 0 ELSE 1 END, created_at DESC, id").Limit(limit).Find(&out).Error
	return out, err
}

// ClosePortForwards closes a lease's open forwards (port 0: all of them)
// and returns the slugs it closed.
func (s *Store) ClosePortForwards(ctx context.Context, leaseID string, port int, reason string) ([]string, error) {
	var slugs []string
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		q := tx.Model(&PortForward{}).Where("lease_id = ? AND closed_at IS NULL", leaseID)
		if port != 0 {
			q = q.Where("port = ?", port)
		}
		if err := q.Pluck("slug", &slugs).Error; err != nil {
			return err
		}
		if len(slugs) == 0 {
			return nil
		}
		return tx.Model(&PortForward{}).Where("slug IN ? AND closed_at IS NULL", slugs).
			Updates(map[string]any{"closed_at": time.Now().UTC(), "close_reason": reason}).Error
	})
	return slugs, err
}
