package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/highway-compute/highway"
)

// APIKey is a credential for the public JSON API. KeyHash is the SHA-256
// of the key; the key itself is shown once at creation and never stored.
type APIKey struct {
	ID         string `gorm:"primaryKey"`
	UserID     string
	Name       string
	Prefix     string
	KeyHash    string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// TableName pins the table: gorm's naming of the "API" initialism is not
// something the schema should depend on.
func (APIKey) TableName() string { return "api_keys" }

// Revoked reports whether the key was revoked.
func (k *APIKey) Revoked() bool { return k.RevokedAt != nil }

// lockUser locks a user's row for the rest of tx, so a count of what the
// user holds and an insert under a cap cannot interleave with another's.
// SQLite transactions are BEGIN IMMEDIATE (see sqliteDSN), which already
// serialises writers; PostgreSQL needs the row lock. An unknown user is
// ENOTFOUND.
func (s *Store) lockUser(tx *gorm.DB, userID string) error {
	q := tx.Model(&User{}).Select("id").Where("id = ?", userID)
	if s.Dialect == DialectPostgres {
		q = q.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
	}
	var owner User
	if err := q.Take(&owner).Error; err != nil {
		_, err = userResult(&owner, err)
		return err
	}
	return nil
}

// CreateAPIKey inserts k, assigning its ID, unless k's user already holds
// maxLive unrevoked keys (ECONFLICT). The count and the insert share one
// transaction with the user's row locked, so two concurrent creations cannot
// both slip under the cap. An unknown user is ENOTFOUND.
func (s *Store) CreateAPIKey(ctx context.Context, k *APIKey, maxLive int) error {
	if k.ID == "" {
		k.ID = NewID()
	}
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lockUser(tx, k.UserID); err != nil {
			return err
		}
		var live int64
		if err := tx.Model(&APIKey{}).Where("user_id = ? AND revoked_at IS NULL", k.UserID).Count(&live).Error; err != nil {
			return fmt.Errorf("count api keys: %w", err)
		}
		if maxLive > 0 && live >= int64(maxLive) {
			return highway.Errorf(highway.ECONFLICT, "You already have %d API keys, the most allowed. Revoke one you no longer use first.", maxLive)
		}
		err := tx.Create(k).Error
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			// Only a repeated 256-bit random key collides: a bug, not user input.
			return fmt.Errorf("create api key: duplicate key hash: %w", err)
		}
		if err != nil {
			return fmt.Errorf("create api key: %w", err)
		}
		return nil
	})
}

// APIKeysOf returns the user's unrevoked keys, newest first.
func (s *Store) APIKeysOf(ctx context.Context, userID string) ([]APIKey, error) {
	var keys []APIKey
	err := s.DB.WithContext(ctx).Where("user_id = ? AND revoked_at IS NULL", userID).
		Order("created_at DESC, id DESC").Find(&keys).Error
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return keys, nil
}

// RevokeAPIKey revokes key id of userID at now. Another user's key, an
// unknown key and an already revoked key are all ENOTFOUND, so nobody
// learns which ids exist.
func (s *Store) RevokeAPIKey(ctx context.Context, userID, id string, now time.Time) error {
	res := s.DB.WithContext(ctx).Model(&APIKey{}).
		Where("id = ? AND user_id = ? AND revoked_at IS NULL", id, userID).
		Update("revoked_at", now.UTC())
	if res.Error != nil {
		return fmt.Errorf("revoke api key: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return highway.Errorf(highway.ENOTFOUND, "API key not found.")
	}
	return nil
}

// UserByAPIKeyHash returns the live key with hash keyHash and its user.
// An unknown or revoked key, and any key of a disabled user, is
// EUNAUTHORIZED: the key no longer grants anything.
func (s *Store) UserByAPIKeyHash(ctx context.Context, keyHash string) (*APIKey, *User, error) {
	var k APIKey
	err := s.DB.WithContext(ctx).Where("key_hash = ? AND revoked_at IS NULL", keyHash).Take(&k).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil, highway.Errorf(highway.EUNAUTHORIZED, "Invalid or revoked API key.")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load api key: %w", err)
	}
	u, err := s.UserByID(ctx, k.UserID)
	if highway.ErrorCode(err) == highway.ENOTFOUND {
		return nil, nil, highway.Errorf(highway.EUNAUTHORIZED, "Invalid or revoked API key.")
	}
	if err != nil {
		return nil, nil, err
	}
	if u.Disabled() {
		return nil, nil, highway.Errorf(highway.EUNAUTHORIZED, "This account is disabled.")
	}
	return &k, u, nil
}

// TouchAPIKey records that key id was used at now, unless a use after
// notBefore is already recorded: concurrent requests then write once, not
// once each.
func (s *Store) TouchAPIKey(ctx context.Context, id string, now, notBefore time.Time) error {
	err := s.DB.WithContext(ctx).Model(&APIKey{}).
		Where("id = ? AND (last_used_at IS NULL OR last_used_at <= ?)", id, notBefore.UTC()).
		Update("last_used_at", now.UTC()).Error
	if err != nil {
		return fmt.Errorf("touch api key: %w", err)
	}
	return nil
}
