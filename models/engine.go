package models

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// What the matching engine and the indexers keep: the engine's input log,
// the providers' asks it prices from, and how far each indexer got.

// Price is a provider's ask for one GPU model.
type Price struct {
	ProviderID      string `gorm:"primaryKey"`
	Model           string `gorm:"primaryKey"`
	PricePerGPUHour int64  `gorm:"column:price_per_gpu_hour"`
	UpdatedAt       time.Time
}

// MarketLogEntry is one command of the matching engine's input log.
type MarketLogEntry struct {
	Seq     int64 `gorm:"primaryKey;autoIncrement:false"`
	Command string
}

// TableName keeps gorm off the pluralised name.
func (MarketLogEntry) TableName() string { return "market_log" }

// ChainCursor is how far an indexer got.
type ChainCursor struct {
	Name   string `gorm:"primaryKey"`
	Height int64
}

// TableName is the SQL table.
func (ChainCursor) TableName() string { return "chain_cursor" }

// SetPrice stores a provider's ask for a model.
func (s *Store) SetPrice(ctx context.Context, p Price) error {
	p.UpdatedAt = time.Now().UTC()
	return s.DB.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "provider_id"}, {Name: "model"}},
		DoUpdates: clause.AssignmentColumns([]string{"price_per_gpu_hour", "updated_at"}),
	}).Create(&p).Error
}

// Prices lists every provider's asks (the broker caches them).
func (s *Store) Prices(ctx context.Context) ([]Price, error) {
	var ps []Price
	err := s.DB.WithContext(ctx).Order("provider_id, model").Find(&ps).Error
	return ps, err
}

// AppendMarketLog appends engine commands in one transaction.
func (s *Store) AppendMarketLog(ctx context.Context, entries []MarketLogEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.DB.WithContext(ctx).CreateInBatches(entries, 500).Error
}

// MarketLog streams the engine's log in order, a page at a time.
func (s *Store) MarketLog(ctx context.Context, fn func([]MarketLogEntry) error) error {
	var after int64 = -1
	for {
		var page []MarketLogEntry
		if err := s.DB.WithContext(ctx).Where("seq > ?", after).Order("seq").Limit(10_000).Find(&page).Error; err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		if err := fn(page); err != nil {
			return err
		}
		after = page[len(page)-1].Seq
	}
}

// Cursor returns an indexer's height (0 if it never ran).
func (s *Store) Cursor(ctx context.Context, name string) (int64, error) {
	var c ChainCursor
	err := s.DB.WithContext(ctx).Where("name = ?", name).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return 0, nil
	}
	return c.Height, err
}

// SetCursor stores an indexer's height.
func (s *Store) SetCursor(ctx context.Context, name string, height int64) error {
	return s.DB.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "name"}},
		DoUpdates: clause.AssignmentColumns([]string{"height"}),
	}).Create(&ChainCursor{Name: name, Height: height}).Error
}
