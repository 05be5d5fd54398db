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
	// SpotFloor is the least per GPU-hour for interruptible use of idle
	// GPUs (0: none); NoticeS the preemption notice, in seconds.
	SpotFloor int64 `gorm:"column:spot_floor_per_gpu_hour"`
	NoticeS   int64 `gorm:"column:notice_s"`
	UpdatedAt time.Time
}

// MarketLogEntry is one command of the matching engine's input log.
type MarketLogEntry struct {
	Seq     int64 `gorm:"primaryKey;autoIncrement:false"`
	Command string
}

// TableName keeps gorm off the pluralised name.
func (MarketLogEntry) TableName() string { return "market_log" }

// MarketCheckpoint is the engine's state after log entry Seq
// (market.Engine.Snapshot, base64).
type MarketCheckpoint struct {
	Seq     int64 `gorm:"primaryKey;autoIncrement:false"`
	TakenAt time.Time
	State   string
}

// TableName is the SQL table.
func (MarketCheckpoint) TableName() string { return "market_checkpoints" }

// keptCheckpoints is how many checkpoints stay, with the log from the
// oldest of them on: one to restore, and one to fall back to.
const keptCheckpoints = 2

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

// SetSpotTerms stores a provider's interruptible floor and notice for a
// model it has an ask for (false when it has none).
func (s *Store) SetSpotTerms(ctx context.Context, providerID, model string, floor, noticeS int64) (bool, error) {
	res := s.DB.WithContext(ctx).Model(&Price{}).Where("provider_id = ? AND model = ?", providerID, model).
		Updates(map[string]any{"spot_floor_per_gpu_hour": floor, "notice_s": noticeS, "updated_at": time.Now().UTC()})
	return res.RowsAffected == 1, res.Error
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

// MarketLog streams the engine's log after entry after, in order, a page
// at a time.
func (s *Store) MarketLog(ctx context.Context, after int64, fn func([]MarketLogEntry) error) error {
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

// SaveMarketCheckpoint stores the engine's state after log entry seq and
// compacts: checkpoints beyond the newest keptCheckpoints go, and so does
// the log up to the oldest one kept. One transaction, fenced like every
// leader write, so a deposed leader cannot prune the log its successor
// replays.
func (s *Store) SaveMarketCheckpoint(ctx context.Context, seq int64, state string, now time.Time) error {
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&MarketCheckpoint{Seq: seq, TakenAt: now.UTC(), State: state}).Error; err != nil {
			return err
		}
		var kept []int64
		if err := tx.Model(&MarketCheckpoint{}).Order("seq DESC").Limit(keptCheckpoints).Pluck("seq", &kept).Error; err != nil {
			return err
		}
		oldest := kept[len(kept)-1]
		if err := tx.Where("seq < ?", oldest).Delete(&MarketCheckpoint{}).Error; err != nil {
			return err
		}
		return tx.Where("seq <= ?", oldest).Delete(&MarketLogEntry{}).Error
	})
}

// MarketCheckpoints returns the kept checkpoints, newest first.
func (s *Store) MarketCheckpoints(ctx context.Context) ([]MarketCheckpoint, error) {
	var cps []MarketCheckpoint
	err := s.DB.WithContext(ctx).Order("seq DESC").Find(&cps).Error
	return cps, err
}

// FirstMarketLogSeq is the oldest log entry's seq (0 when the log is
// empty): start-up checks that the log continues from the checkpoint it
// restored.
func (s *Store) FirstMarketLogSeq(ctx context.Context) (int64, error) {
	var seq *int64
	err := s.DB.WithContext(ctx).Model(&MarketLogEntry{}).Select("MIN(seq)").Scan(&seq).Error
	if err != nil || seq == nil {
		return 0, err
	}
	return *seq, nil
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
