package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/highway-compute/highway/protocol"
)

// Agent request nonces, shared by every replica on the database.

// agentNonce is one accepted request's nonce.
type agentNonce struct {
	NonceKey  string `gorm:"primaryKey"`
	ExpiresAt time.Time
}

func (agentNonce) TableName() string { return "agent_nonces" }

// NonceStore is protocol.NonceStore on the database: a nonce used through
// one replica is refused at every other. Each accepted agent request costs
// one insert (an expired row is taken over in place).
type NonceStore struct{ s *Store }

var _ protocol.NonceStore = NonceStore{}

// Nonces returns the store's shared nonce store.
func (s *Store) Nonces() NonceStore { return NonceStore{s} }

// Use implements protocol.NonceStore: key is recorded until expires, or
// the request is a replay (protocol.ErrReplay).
func (n NonceStore) Use(ctx context.Context, key string, now, expires time.Time) error {
	// The verifier's key joins agent id and nonce with a NUL, which a
	// PostgreSQL TEXT refuses; its digest is as unique and fixed in size.
	sum := sha256.Sum256([]byte(key))
	key = hex.EncodeToString(sum[:])
	db := n.s.DB.WithContext(ctx)
	res := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&agentNonce{NonceKey: key, ExpiresAt: expires.UTC()})
	if res.Error != nil {
		return fmt.Errorf("record agent nonce: %w", res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	// The key is there: a replay, unless its row outlived its window
	// (not pruned yet), which one conditional update takes over, so two
	// racing reuses cannot both win.
	res = db.Model(&agentNonce{}).Where("nonce_key = ? AND expires_at <= ?", key, now.UTC()).Update("expires_at", expires.UTC())
	if res.Error != nil {
		return fmt.Errorf("record agent nonce: %w", res.Error)
	}
	if res.RowsAffected == 1 {
		return nil
	}
	return fmt.Errorf("%w: nonce already used", protocol.ErrReplay)
}

// PruneNonces deletes nonces whose window has passed.
func (s *Store) PruneNonces(ctx context.Context, now time.Time) (int64, error) {
	res := s.DB.WithContext(ctx).Where("expires_at <= ?", now.UTC()).Delete(&agentNonce{})
	if res.Error != nil && !errors.Is(res.Error, gorm.ErrRecordNotFound) {
		return 0, res.Error
	}
	return res.RowsAffected, nil
}
