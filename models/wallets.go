package models

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/highway-compute/highway"
)

// Wallets: the managed wallet of each user and its transfers in and out.

// Wallet is a buyer's managed chain account.
type Wallet struct {
	UserID    string `gorm:"primaryKey"`
	Address   string
	SealedKey string
	CreatedAt time.Time
}

// WalletOf returns a user's wallet, or ENOTFOUND.
func (s *Store) WalletOf(ctx context.Context, userID string) (*Wallet, error) {
	var w Wallet
	err := s.DB.WithContext(ctx).Where("user_id = ?", userID).Take(&w).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, highway.Errorf(highway.ENOTFOUND, "No wallet yet.")
	}
	return &w, err
}

// CreateWallet stores a new wallet; if the user already has one (a
// concurrent request created it), that one is returned instead.
func (s *Store) CreateWallet(ctx context.Context, w *Wallet) (*Wallet, error) {
	w.CreatedAt = time.Now().UTC()
	err := s.DB.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(w).Error
	if err != nil {
		return nil, err
	}
	return s.WalletOf(ctx, w.UserID)
}

// WalletEvent is one transfer in or out of a managed wallet.
type WalletEvent struct {
	Address string `gorm:"primaryKey"`
	Height  int64  `gorm:"primaryKey;autoIncrement:false"`
	// Seq is the transfer's place among the block's transfer events.
	Seq    int64 `gorm:"primaryKey;autoIncrement:false"`
	At     *time.Time
	TxHash string
	// Kind names what it was: faucet, escrow, refund, network fee, sent,
	// received.
	Kind         string
	Incoming     bool
	Counterparty string
	// Amount is in the chain denom's micro-units, decimal.
	Amount string
}

// ManagedAddresses returns which of the given addresses are managed
// wallets.
func (s *Store) ManagedAddresses(ctx context.Context, addrs []string) ([]string, error) {
	var out []string
	if len(addrs) == 0 {
		return nil, nil
	}
	err := s.DB.WithContext(ctx).Model(&Wallet{}).Where("address IN ?", addrs).Order("address").Pluck("address", &out).Error
	return out, err
}

// AddWalletEvents stores wallet events; ones already stored are ignored
// (the indexer re-reads a block after a restart).
func (s *Store) AddWalletEvents(ctx context.Context, evs []WalletEvent) error {
	if len(evs) == 0 {
		return nil
	}
	return s.DB.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&evs).Error
}

// WalletEvents lists a wallet's history, newest first.
func (s *Store) WalletEvents(ctx context.Context, address string, limit int) ([]WalletEvent, error) {
	var out []WalletEvent
	err := s.DB.WithContext(ctx).Where("address = ?", address).Order("height DESC, seq DESC").Limit(limit).Find(&out).Error
	return out, err
}
