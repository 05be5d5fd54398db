package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/highway-compute/highway"
)

// Session is a logged-in browser. IDHash is the SHA-256 of the cookie value.
type Session struct {
	IDHash     string `gorm:"primaryKey;column:id_hash"`
	UserID     string
	IP         string
	UserAgent  string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// CreateSession stores a new session.
func (s *Store) CreateSession(ctx context.Context, sess *Session) error {
	if err := s.DB.WithContext(ctx).Create(sess).Error; err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// SessionUser returns the live session with hash idHash and its user.
// Expired sessions and sessions of disabled users are ENOTFOUND.
func (s *Store) SessionUser(ctx context.Context, idHash string, now time.Time) (*Session, *User, error) {
	var sess Session
	err := s.DB.WithContext(ctx).Where("id_hash = ? AND expires_at > ?", idHash, now.UTC()).Take(&sess).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil, highway.Errorf(highway.ENOTFOUND, "Session not found.")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load session: %w", err)
	}
	u, err := s.UserByID(ctx, sess.UserID)
	if err != nil {
		return nil, nil, err
	}
	if u.Disabled() {
		return nil, nil, highway.Errorf(highway.ENOTFOUND, "Session not found.")
	}
	return &sess, u, nil
}

// TouchSession records activity and slides the expiry forward.
func (s *Store) TouchSession(ctx context.Context, idHash string, now, expires time.Time) error {
	err := s.DB.WithContext(ctx).Model(&Session{}).Where("id_hash = ?", idHash).
		Updates(map[string]any{"last_seen_at": now.UTC(), "expires_at": expires.UTC()}).Error
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession removes one session (logout). Deleting a missing session is
// not an error: logout must always succeed.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	if err := s.DB.WithContext(ctx).Where("id_hash = ?", idHash).Delete(&Session{}).Error; err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes sessions past their expiry and returns how
// many went.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res := s.DB.WithContext(ctx).Where("expires_at <= ?", now.UTC()).Delete(&Session{})
	if res.Error != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// CountSessions returns the number of stored sessions of a user.
func (s *Store) CountSessions(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := s.DB.WithContext(ctx).Model(&Session{}).Where("user_id = ?", userID).Count(&n).Error
	return n, err
}
