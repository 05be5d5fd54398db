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

// Leases: the marketplace's copy of a chain lease, its workload's output,
// and the agent assignments that start and stop it.

// Lease statuses (the API's names).
const (
	LeasePending  = "pending"
	LeaseActive   = "active"
	LeaseDisputed = "disputed"
	LeaseClosed   = "closed"
)

// Lease is the marketplace's record of a lease. Amounts are decimal
// strings of micro-units, copied from the chain.
type Lease struct {
	ID             string `gorm:"primaryKey"`
	ChainLeaseID   uint64
	OrderID        string
	BuyerID        string
	ProviderID     string
	MachineID      string
	AgentID        string
	Model          string
	GPUs           int64  `gorm:"column:gpus"`
	GPUUUIDs       string `gorm:"column:gpu_uuids"`
	PricePerHour   int64
	PricePerEpoch  string
	EpochsTotal    int64
	Status         string
	WorkloadStatus string
	WorkloadJSON   string `gorm:"column:workload_json"`
	// The agent's image pull (bytes as the registry lists them) and the
	// manifest digest it resolved the image to.
	PullDone    int64
	PullTotal   int64
	PullCached  bool
	ImageDigest string
	CreateTx    string
	Remaining   string
	Pending     string
	Frozen      string
	Paid        string
	Refunded    string
	Fees        string
	CloseReason string
	// Auto-extend (off while AutoExtendHours is 0): hours added each time,
	// the wallet floor in uhwy, and what the last attempt did.
	AutoExtendHours int64
	AutoExtendFloor int64
	AutoExtendNote  string
	// Interruptible: the lease may be preempted. PreemptAt is when its
	// notice ends (nil: not preempted); PreemptedBy the order that took
	// its GPUs.
	Interruptible bool
	PreemptAt     *time.Time
	PreemptedBy   string
	EndsAt        time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// LeaseLog is one line of workload output.
type LeaseLog struct {
	LeaseID string `gorm:"primaryKey"`
	Seq     int64  `gorm:"primaryKey;autoIncrement:false"`
	At      time.Time
	Stream  string
	Text    string
}

// AssignmentRow is work queued for an agent (JSON of protocol.Assignment).
type AssignmentRow struct {
	ID        int64 `gorm:"primaryKey;autoIncrement:false"`
	AgentID   string
	LeaseID   string
	Body      string
	CreatedAt time.Time
}

// TableName is the SQL table.
func (AssignmentRow) TableName() string { return "assignments" }

// CreateLease stores a lease and marks its order leased, atomically.
func (s *Store) CreateLease(ctx context.Context, l *Lease) error {
	now := time.Now().UTC()
	l.CreatedAt, l.UpdatedAt = now, now
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(l).Error; err != nil {
			return fmt.Errorf("create lease: %w", err)
		}
		return tx.Model(&Order{}).Where("id = ?", l.OrderID).
			Updates(map[string]any{"status": OrderLeased, "lease_id": l.ID, "updated_at": now}).Error
	})
}

// UpdateLease writes the given columns of a lease.
func (s *Store) UpdateLease(ctx context.Context, id string, cols map[string]any) error {
	cols["updated_at"] = time.Now().UTC()
	return s.DB.WithContext(ctx).Model(&Lease{}).Where("id = ?", id).Updates(cols).Error
}

// GrowLease records that a lease was extended on chain from epochs_total
// from to to, ending at endsAt, when the row still says from; it reports
// whether it did. The extension's caller and the indexer both reconcile
// an extension, and only the one whose write lands re-posts the start.
func (s *Store) GrowLease(ctx context.Context, id string, from, to int64, endsAt time.Time) (bool, error) {
	res := s.DB.WithContext(ctx).Model(&Lease{}).Where("id = ? AND epochs_total = ?", id, from).
		Updates(map[string]any{"epochs_total": to, "ends_at": endsAt, "updated_at": time.Now().UTC()})
	return res.RowsAffected == 1, res.Error
}

// AutoExtendDue lists the active leases with auto-extend on that end
// before the given time, soonest first.
func (s *Store) AutoExtendDue(ctx context.Context, before time.Time, limit int) ([]Lease, error) {
	var ls []Lease
	err := s.DB.WithContext(ctx).Where("status = ? AND auto_extend_hours > 0 AND preempt_at IS NULL AND ends_at < ?", LeaseActive, before.UTC()).
		Order("ends_at, id").Limit(limit).Find(&ls).Error
	return ls, err
}

// LeaseByID returns a lease, or ENOTFOUND.
func (s *Store) LeaseByID(ctx context.Context, id string) (*Lease, error) {
	var l Lease
	err := s.DB.WithContext(ctx).Where("id = ?", id).Take(&l).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, highway.Errorf(highway.ENOTFOUND, "Lease not found.")
	}
	return &l, err
}

// LeaseByChainID returns the lease with a chain lease id, or ENOTFOUND.
func (s *Store) LeaseByChainID(ctx context.Context, chainID uint64) (*Lease, error) {
	var l Lease
	err := s.DB.WithContext(ctx).Where("chain_lease_id = ?", chainID).Take(&l).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, highway.Errorf(highway.ENOTFOUND, "Lease not found.")
	}
	return &l, err
}

// LeasesOf lists leases where the user is the buyer (or, with provider,
// the provider), newest first.
func (s *Store) LeasesOf(ctx context.Context, userID string, provider bool, limit int) ([]Lease, error) {
	col := "buyer_id"
	if provider {
		col = "provider_id"
	}
	var ls []Lease
	err := s.DB.WithContext(ctx).Where(col+" = ?", userID).Order("created_at DESC, id DESC").Limit(limit).Find(&ls).Error
	return ls, err
}

// AppendLogs stores workload lines; lines already stored (same seq) are
// ignored, so an agent re-sending a batch after a timeout duplicates nothing.
func (s *Store) AppendLogs(ctx context.Context, lines []LeaseLog) error {
	if len(lines) == 0 {
		return nil
	}
	return s.DB.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(lines, 200).Error
}

// Logs returns up to limit lines of a lease after seq.
func (s *Store) Logs(ctx context.Context, leaseID string, after int64, limit int) ([]LeaseLog, error) {
	var ls []LeaseLog
	err := s.DB.WithContext(ctx).Where("lease_id = ? AND seq > ?", leaseID, after).Order("seq").Limit(limit).Find(&ls).Error
	return ls, err
}

// AddAssignment queues work for an agent.
func (s *Store) AddAssignment(ctx context.Context, a AssignmentRow) error {
	a.CreatedAt = time.Now().UTC()
	return s.DB.WithContext(ctx).Create(&a).Error
}

// Assignments lists an agent's queued work after id.
func (s *Store) Assignments(ctx context.Context, agentID string, after int64) ([]AssignmentRow, error) {
	var as []AssignmentRow
	err := s.DB.WithContext(ctx).Where("agent_id = ? AND id > ?", agentID, after).Order("id").Limit(100).Find(&as).Error
	return as, err
}

// MaxAssignmentID is the highest assignment id handed out.
func (s *Store) MaxAssignmentID(ctx context.Context) (int64, error) {
	var n *int64
	err := s.DB.WithContext(ctx).Model(&AssignmentRow{}).Select("MAX(id)").Scan(&n).Error
	if err != nil || n == nil {
		return 0, err
	}
	return *n, nil
}

// TableName is the SQL table.
func (LeaseLog) TableName() string { return "lease_logs" }
