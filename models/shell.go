package models

import (
	"context"
	"time"
)

// ShellSession is one terminal a buyer opened into a lease's workload.
// BytesIn is what the buyer typed, BytesOut what the terminal printed.
type ShellSession struct {
	ID        string `gorm:"primaryKey"`
	LeaseID   string
	UserID    string
	StartedAt time.Time
	EndedAt   *time.Time
	BytesIn   int64
	BytesOut  int64
	EndReason string
}

// CreateShellSession records a session as it opens.
func (s *Store) CreateShellSession(ctx context.Context, ss *ShellSession) error {
	return s.DB.WithContext(ctx).Create(ss).Error
}

// EndShellSession records how a session ended.
func (s *Store) EndShellSession(ctx context.Context, id string, bytesIn, bytesOut int64, reason string) error {
	return s.DB.WithContext(ctx).Model(&ShellSession{}).Where("id = ? AND ended_at IS NULL", id).
		Updates(map[string]any{"ended_at": time.Now().UTC(), "bytes_in": bytesIn, "bytes_out": bytesOut, "end_reason": reason}).Error
}

// ShellSessions lists a lease's sessions, newest first.
func (s *Store) ShellSessions(ctx context.Context, leaseID string, limit int) ([]ShellSession, error) {
	var out []ShellSession
	err := s.DB.WithContext(ctx).Where("lease_id = ?", leaseID).Order("started_at DESC, id").Limit(limit).Find(&out).Error
	return out, err
}
