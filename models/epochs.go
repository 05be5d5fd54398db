package models

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/highway-compute/highway"
)

// Epochs: each lease epoch's verdict as the chain indexer recorded it, and
// the provider's earnings read from them.

// LeaseEpoch is one settled epoch.
type LeaseEpoch struct {
	LeaseID     string `gorm:"primaryKey"`
	N           int64  `gorm:"primaryKey;autoIncrement:false"`
	Status      string
	ValidNonces int64
	Required    int64
	Amount      string
	TxHash      string
	Height      int64
	// SettledAt is the settling block's time (nil: indexed before it
	// was recorded, or no verdict yet).
	SettledAt *time.Time
	// Reason says why a missed epoch missed, as the chain reported it.
	Reason string
}

// UpsertEpoch records a settled epoch (idempotent: the indexer may see an
// event twice after a restart).
func (s *Store) UpsertEpoch(ctx context.Context, e LeaseEpoch) error {
	return s.DB.WithContext(ctx).Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "lease_id"}, {Name: "n"}},
		DoUpdates: append(clause.AssignmentColumns([]string{"status", "valid_nonces", "required", "amount", "height", "settled_at", "reason"}),
			// A verdict comes from the judging block's end, with no
			// transaction: keep the hash of the one that carried the proof.
			clause.Assignment{Column: clause.Column{Name: "tx_hash"}, Value: gorm.Expr("COALESCE(NULLIF(excluded.tx_hash, ''), lease_epochs.tx_hash)")}),
	}).Create(&e).Error
}

// AddPendingEpoch records an epoch whose proof landed and waits for its
// verdict. It never overwrites a row: a verdict indexed already stands.
func (s *Store) AddPendingEpoch(ctx context.Context, e LeaseEpoch) error {
	return s.DB.WithContext(ctx).Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "lease_id"}, {Name: "n"}}, DoNothing: true,
	}).Create(&e).Error
}

// ProviderEpoch is a settled epoch of one of a provider's leases.
type ProviderEpoch struct {
	LeaseEpoch
	ChainLeaseID uint64
}

// ProviderEpochs lists the epochs of a provider's leases settled since the
// given time, newest first, at most limit.
func (s *Store) ProviderEpochs(ctx context.Context, providerID string, since time.Time, limit int) ([]ProviderEpoch, error) {
	var out []ProviderEpoch
	err := s.DB.WithContext(ctx).Table("lease_epochs").Joins("JOIN leases ON leases.id = lease_epochs.lease_id").
		Select("lease_epochs.*, leases.chain_lease_id AS chain_lease_id").
		Where("leases.provider_id = ? AND lease_epochs.settled_at >= ?", providerID, since).
		Order("lease_epochs.settled_at DESC, lease_epochs.lease_id, lease_epochs.n DESC").Limit(limit).Scan(&out).Error
	return out, err
}

// ProviderHour is one hour of a provider's settled epochs. Earned is the
// cleared epochs' amounts in micro-units, exact: EarnedHi·10⁹ + EarnedLo,
// plus any amount of over 18 digits listed in Long (see ProviderHours).
type ProviderHour struct {
	Hour               int64 // unix time / 3600
	Cleared, Missed    int64
	EarnedHi, EarnedLo int64
	// Long are the hour's amounts too wide for the SQL sums, added
	// exactly by Earned. Not a column (gorm would log every read).
	Long []string `gorm:"-"`
}

// Earned is the hour's cleared amounts as one exact integer.
func (h ProviderHour) Earned() highway.Total {
	e := highway.TotalOf(highway.Amount(h.EarnedHi)).Mul(1_000_000_000).Add(highway.TotalOf(highway.Amount(h.EarnedLo)))
	for _, a := range h.Long {
		if v, ok := highway.ParseTotal(a); ok {
			e = e.Add(v)
		}
	}
	return e
}

// ProviderHours sums a provider's epochs settled in [from, to) per hour,
// in hour order, however many there are (the console's charts once read
// the rows themselves and stopped at 10 000, so a large provider's chart
// lost its earliest hours). Amounts are decimal strings: each is split
// into its last nine digits and the rest, both summed as integers (no
// overflow below 10⁹ rows an hour); the rare amount of more than 18 digits
// is returned whole; Earned adds it all up.
func (s *Store) ProviderHours(ctx context.Context, providerID string, from, to time.Time) ([]ProviderHour, error) {
	hour := "CAST(strftime('%s', lease_epochs.settled_at) AS INTEGER) / 3600"
	if s.Dialect == DialectPostgres {
		hour = "CAST(FLOOR(EXTRACT(EPOCH FROM lease_epochs.settled_at) / 3600) AS BIGINT)"
	}
	const (
		cleared = "lease_epochs.status = 'cleared' AND lease_epochs.amount <> '' AND LENGTH(lease_epochs.amount) <= 18"
		lo      = "CAST(CASE WHEN LENGTH(lease_epochs.amount) > 9 THEN SUBSTR(lease_epochs.amount, LENGTH(lease_epochs.amount) - 8) ELSE lease_epochs.amount END AS BIGINT)"
		hi      = "CASE WHEN LENGTH(lease_epochs.amount) > 9 THEN CAST(SUBSTR(lease_epochs.amount, 1, LENGTH(lease_epochs.amount) - 9) AS BIGINT) ELSE 0 END"
	)
	base := func() *gorm.DB {
		return s.DB.WithContext(ctx).Table("lease_epochs").Joins("JOIN leases ON leases.id = lease_epochs.lease_id").
			Where("leases.provider_id = ? AND lease_epochs.settled_at >= ? AND lease_epochs.settled_at < ?", providerID, from.UTC(), to.UTC())
	}
	var out []ProviderHour
	err := base().Select(hour + " AS hour, " +
		"SUM(CASE WHEN lease_epochs.status = 'cleared' THEN 1 ELSE 0 END) AS cleared, " +
		"SUM(CASE WHEN lease_epochs.status = 'missed' THEN 1 ELSE 0 END) AS missed, " +
		"SUM(CASE WHEN " + cleared + " THEN " + hi + " ELSE 0 END) AS earned_hi, " +
		"SUM(CASE WHEN " + cleared + " THEN " + lo + " ELSE 0 END) AS earned_lo").
		Group("hour").Order("hour").Scan(&out).Error
	if err != nil {
		return nil, err
	}
	var long []struct {
		Hour   int64
		Amount string
	}
	err = base().Select(hour + " AS hour, lease_epochs.amount AS amount").
		Where("lease_epochs.status = 'cleared' AND LENGTH(lease_epochs.amount) > 18").Order("hour").Scan(&long).Error
	if err != nil {
		return nil, err
	}
	for _, l := range long {
		for i := range out {
			if out[i].Hour == l.Hour {
				out[i].Long = append(out[i].Long, l.Amount)
			}
		}
	}
	return out, nil
}

// EpochCount is one machine's settled epochs.
type EpochCount struct {
	MachineID       string
	Cleared, Missed int64
}

// EpochCounts counts the cleared and missed epochs settled since the given
// time (by the lease's creation for epochs indexed before settling times
// were recorded), per machine (machineID "" for every machine), in machine
// order.
func (s *Store) EpochCounts(ctx context.Context, since time.Time, machineID string) ([]EpochCount, error) {
	q := s.DB.WithContext(ctx).Table("lease_epochs").Joins("JOIN leases ON leases.id = lease_epochs.lease_id").
		Select("leases.machine_id AS machine_id, "+
			"SUM(CASE WHEN lease_epochs.status = 'cleared' THEN 1 ELSE 0 END) AS cleared, "+
			"SUM(CASE WHEN lease_epochs.status = 'missed' THEN 1 ELSE 0 END) AS missed").
		Where("lease_epochs.settled_at >= ? OR (lease_epochs.settled_at IS NULL AND leases.created_at >= ?)", since, since).
		Group("leases.machine_id").Order("leases.machine_id")
	if machineID != "" {
		q = q.Where("leases.machine_id = ?", machineID)
	}
	var out []EpochCount
	err := q.Scan(&out).Error
	return out, err
}

// Epochs lists a lease's settled epochs in order.
func (s *Store) Epochs(ctx context.Context, leaseID string) ([]LeaseEpoch, error) {
	var es []LeaseEpoch
	err := s.DB.WithContext(ctx).Where("lease_id = ?", leaseID).Order("n").Find(&es).Error
	return es, err
}

// TableName is the SQL table (gorm would pluralise "epoch" as "epoches").
func (LeaseEpoch) TableName() string { return "lease_epochs" }
