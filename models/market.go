package models

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/highway-compute/highway"
)

// Order statuses (the API's names).
const (
	OrderOpen      = "open"
	OrderMatched   = "matched"
	OrderLeased    = "leased"
	OrderFailed    = "failed"
	OrderCancelled = "cancelled"
	OrderExpired   = "expired"
)

// Lease statuses (the API's names).
const (
	LeasePending  = "pending"
	LeaseActive   = "active"
	LeaseDisputed = "disputed"
	LeaseClosed   = "closed"
)

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

// Wallet is a buyer's managed chain account.
type Wallet struct {
	UserID    string `gorm:"primaryKey"`
	Address   string
	SealedKey string
	CreatedAt time.Time
}

// Order is a buyer's order.
type Order struct {
	ID             string `gorm:"primaryKey"`
	BuyerID        string
	Type           string
	OfferID        string
	Model          string
	MinVRAMGiB     int64 `gorm:"column:min_vram_gib"`
	GPUs           int64 `gorm:"column:gpus"`
	MaxPrice       int64
	Region         string
	MaxRTTms       int64 `gorm:"column:max_rtt_ms"`
	Hours          int64
	ExpiresAt      *time.Time
	LatencyFirst   bool
	WorkloadJSON   string `gorm:"column:workload_json"`
	Status         string
	Failure        string
	MachineID      string
	Price          int64
	LeaseID        string
	IdempotencyKey string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

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
	CreateTx       string
	Remaining      string
	Pending        string
	Frozen         string
	Paid           string
	Refunded       string
	Fees           string
	CloseReason    string
	EndsAt         time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

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
	// was recorded).
	SettledAt *time.Time
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

// ChainCursor is how far an indexer got.
type ChainCursor struct {
	Name   string `gorm:"primaryKey"`
	Height int64
}

// TableName is the SQL table.
func (ChainCursor) TableName() string { return "chain_cursor" }

// Dispute is a buyer's dispute over a lease.
type Dispute struct {
	ID                string `gorm:"primaryKey"`
	LeaseID           string
	BuyerID           string
	ProviderID        string
	Status            string
	BuyerStatement    string
	ProviderStatement string
	BuyerBps          int64
	Resolution        string
	OpenTx            string
	ResolveTx         string
	CreatedAt         time.Time
	ResolvedAt        *time.Time
}

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

// CreateOrder stores a new order. With an idempotency key, an order the
// buyer already placed under it is returned instead (existing == true).
func (s *Store) CreateOrder(ctx context.Context, o *Order) (existing bool, err error) {
	if o.IdempotencyKey != "" {
		var prev Order
		err := s.DB.WithContext(ctx).Where("buyer_id = ? AND idempotency_key = ?", o.BuyerID, o.IdempotencyKey).Take(&prev).Error
		if err == nil {
			*o = prev
			return true, nil
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return false, err
		}
	}
	now := time.Now().UTC()
	o.CreatedAt, o.UpdatedAt = now, now
	return false, s.DB.WithContext(ctx).Create(o).Error
}

// UpdateOrder writes the order's outcome fields.
func (s *Store) UpdateOrder(ctx context.Context, o *Order) error {
	o.UpdatedAt = time.Now().UTC()
	return s.DB.WithContext(ctx).Model(&Order{}).Where("id = ?", o.ID).Updates(map[string]any{
		"status": o.Status, "failure": o.Failure, "machine_id": o.MachineID, "price": o.Price,
		"lease_id": o.LeaseID, "updated_at": o.UpdatedAt,
	}).Error
}

// OrderByID returns an order, or ENOTFOUND.
func (s *Store) OrderByID(ctx context.Context, id string) (*Order, error) {
	var o Order
	err := s.DB.WithContext(ctx).Where("id = ?", id).Take(&o).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, highway.Errorf(highway.ENOTFOUND, "Order not found.")
	}
	return &o, err
}

// OrdersOf lists a buyer's orders, newest first.
func (s *Store) OrdersOf(ctx context.Context, buyerID string, limit int) ([]Order, error) {
	var os []Order
	err := s.DB.WithContext(ctx).Where("buyer_id = ?", buyerID).Order("created_at DESC, id DESC").Limit(limit).Find(&os).Error
	return os, err
}

// OrdersWithStatus lists orders in a status (the broker's restart recovery).
func (s *Store) OrdersWithStatus(ctx context.Context, status string) ([]Order, error) {
	var os []Order
	err := s.DB.WithContext(ctx).Where("status = ?", status).Order("created_at, id").Find(&os).Error
	return os, err
}

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

// UpsertEpoch records a settled epoch (idempotent: the indexer may see an
// event twice after a restart).
func (s *Store) UpsertEpoch(ctx context.Context, e LeaseEpoch) error {
	return s.DB.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "lease_id"}, {Name: "n"}},
		DoUpdates: clause.AssignmentColumns([]string{"status", "valid_nonces", "required", "amount", "tx_hash", "height", "settled_at"}),
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
	Long               []string
}

// Earned is the hour's cleared amounts as one exact integer.
func (h ProviderHour) Earned() *big.Int {
	e := new(big.Int).Mul(big.NewInt(h.EarnedHi), big.NewInt(1_000_000_000))
	e.Add(e, big.NewInt(h.EarnedLo))
	for _, a := range h.Long {
		if v, ok := new(big.Int).SetString(a, 10); ok {
			e.Add(e, v)
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

// SetMachineVerified records the outcome of a machine's verification PoC.
func (s *Store) SetMachineVerified(ctx context.Context, machineID string, at *time.Time, verifyErr string) error {
	return s.DB.WithContext(ctx).Model(&Machine{}).Where("id = ?", machineID).
		Updates(map[string]any{"verified_at": at, "verify_error": verifyErr}).Error
}

// SetMachineListing stores the chain address and listing region an agent reported.
func (s *Store) SetMachineListing(ctx context.Context, machineID, providerAddress, region string) error {
	return s.DB.WithContext(ctx).Model(&Machine{}).Where("id = ?", machineID).
		Updates(map[string]any{"provider_address": providerAddress, "region": region}).Error
}

// AllMachines lists every machine with its GPUs (the broker's start-up load).
func (s *Store) AllMachines(ctx context.Context) ([]Machine, error) {
	var ms []Machine
	err := s.DB.WithContext(ctx).Preload("GPUs", func(db *gorm.DB) *gorm.DB { return db.Order("idx") }).
		Order("created_at, id").Find(&ms).Error
	return ms, err
}

// AgentOfMachine returns the live (unrevoked) agent of a machine.
func (s *Store) AgentOfMachine(ctx context.Context, machineID string) (*Agent, error) {
	var a Agent
	err := s.DB.WithContext(ctx).Where("machine_id = ? AND revoked_at IS NULL", machineID).Order("created_at DESC").Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, highway.Errorf(highway.ENOTFOUND, "No agent on this machine.")
	}
	return &a, err
}

// CreateDispute stores a dispute.
func (s *Store) CreateDispute(ctx context.Context, d *Dispute) error {
	d.CreatedAt = time.Now().UTC()
	return s.DB.WithContext(ctx).Create(d).Error
}

// UpdateDispute writes the given columns of a dispute.
func (s *Store) UpdateDispute(ctx context.Context, id string, cols map[string]any) error {
	return s.DB.WithContext(ctx).Model(&Dispute{}).Where("id = ?", id).Updates(cols).Error
}

// DisputeByID returns a dispute, or ENOTFOUND.
func (s *Store) DisputeByID(ctx context.Context, id string) (*Dispute, error) {
	var d Dispute
	err := s.DB.WithContext(ctx).Where("id = ?", id).Take(&d).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, highway.Errorf(highway.ENOTFOUND, "Dispute not found.")
	}
	return &d, err
}

// DisputesOfLease lists a lease's disputes, oldest first.
func (s *Store) DisputesOfLease(ctx context.Context, leaseID string) ([]Dispute, error) {
	var ds []Dispute
	err := s.DB.WithContext(ctx).Where("lease_id = ?", leaseID).Order("created_at, id").Find(&ds).Error
	return ds, err
}

// Disputes lists disputes: a user's own (as buyer or provider), or with
// userID "" all of them; status "" means any. Oldest first (the queue order).
func (s *Store) Disputes(ctx context.Context, userID, status string, limit int) ([]Dispute, error) {
	q := s.DB.WithContext(ctx).Order("created_at, id").Limit(limit)
	if userID != "" {
		q = q.Where("buyer_id = ? OR provider_id = ?", userID, userID)
	}
	if status != "" {
		q = q.Where("status = ?", status)
	}
	var ds []Dispute
	err := q.Find(&ds).Error
	return ds, err
}

// TableName is the SQL table (gorm would pluralise "epoch" as "epoches").
func (LeaseEpoch) TableName() string { return "lease_epochs" }

// TableName is the SQL table.
func (LeaseLog) TableName() string { return "lease_logs" }
