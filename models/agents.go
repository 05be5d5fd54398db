package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/highway-compute/highway"
)

// EnrollmentToken is a one-time credential an agent trades for its identity.
type EnrollmentToken struct {
	ID         string `gorm:"primaryKey"`
	TokenHash  string
	ProviderID string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	UsedAt     *time.Time
	AgentID    string
}

// Machine is a provider's GPU machine.
type Machine struct {
	ID              string `gorm:"primaryKey"`
	ProviderID      string
	Hostname        string
	AgentVersion    string
	DriverVersion   string
	CUDAVersion     string `gorm:"column:cuda_version"`
	Simulated       bool
	RTTJSON         string `gorm:"column:rtt_json"`
	LastHeartbeatAt *time.Time
	VerifiedAt      *time.Time
	SuspendedAt     *time.Time
	SuspendReason   string
	// ProviderAddress is the chain address the agent's provider key signs
	// quotes and proofs with; Region is where the machine is listed.
	ProviderAddress string
	Region          string
	VerifyError     string
	// MeasuredMilliH100 is what the verification proof measured, per GPU,
	// in thousandths of an H100 (0: not measured).
	MeasuredMilliH100 int64 `gorm:"column:measured_milli_h100"`
	CreatedAt         time.Time
	UpdatedAt         time.Time
	GPUs              []GPU `gorm:"foreignKey:MachineID"`
}

// RTTs decodes the machine's region round-trip times (ms).
func (m *Machine) RTTs() map[string]int64 {
	out := map[string]int64{}
	_ = json.Unmarshal([]byte(m.RTTJSON), &out)
	return out
}

// Online reports whether the machine's last heartbeat is recent enough:
// within misses × interval of now. One late beat never takes it offline.
func (m *Machine) Online(now time.Time, interval time.Duration, misses int) bool {
	if m.LastHeartbeatAt == nil {
		return false
	}
	return now.Sub(*m.LastHeartbeatAt) <= time.Duration(misses)*interval
}

// Agent is the software on a machine and its ed25519 public key.
type Agent struct {
	ID         string `gorm:"primaryKey"`
	MachineID  string
	ProviderID string
	PublicKey  string
	BootID     string
	LastSeq    uint64
	CreatedAt  time.Time
	LastSeenAt *time.Time
	RevokedAt  *time.Time
}

// GPU is one GPU of a machine as of the last heartbeat.
type GPU struct {
	MachineID      string `gorm:"primaryKey"`
	Idx            int    `gorm:"primaryKey;column:idx"`
	UUID           string `gorm:"column:uuid"`
	Name           string
	Class          string
	MemoryTotalMiB uint64 `gorm:"column:memory_total_mib"`
	MemoryUsedMiB  uint64 `gorm:"column:memory_used_mib"`
	UtilizationPct uint32
	TemperatureC   uint32 `gorm:"column:temperature_c"`
	PowerMW        uint64 `gorm:"column:power_mw"`
	PowerLimitMW   uint64 `gorm:"column:power_limit_mw"`
	ECCUncorrected uint64 `gorm:"column:ecc_uncorrected"`
	PCIeGen        int    `gorm:"column:pcie_gen"`
	PCIeWidth      int    `gorm:"column:pcie_width"`
	MIGEnabled     bool   `gorm:"column:mig_enabled"`
	Free           bool
	LeaseID        string
	UpdatedAt      time.Time
}

// CreateEnrollmentToken stores a token (by hash) for a provider.
func (s *Store) CreateEnrollmentToken(ctx context.Context, t *EnrollmentToken) error {
	if t.ID == "" {
		t.ID = NewID()
	}
	if err := s.DB.WithContext(ctx).Create(t).Error; err != nil {
		return fmt.Errorf("create enrollment token: %w", err)
	}
	return nil
}

// RegisterAgent consumes an unused, unexpired token and creates the
// machine and its agent in one transaction: a token works once, even when
// two agents race with it.
func (s *Store) RegisterAgent(ctx context.Context, tokenHash string, now time.Time, m *Machine, a *Agent) error {
	now = now.UTC()
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var tok EnrollmentToken
		err := tx.Where("token_hash = ?", tokenHash).Take(&tok).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return &highway.Error{Code: highway.EUNAUTHORIZED, Field: "token", Message: "Unknown enrollment token."}
		}
		if err != nil {
			return fmt.Errorf("load token: %w", err)
		}
		if tok.UsedAt != nil {
			return &highway.Error{Code: highway.EUNAUTHORIZED, Field: "token", Message: "This enrollment token was already used."}
		}
		if !now.Before(tok.ExpiresAt) {
			return &highway.Error{Code: highway.EUNAUTHORIZED, Field: "token", Message: "This enrollment token has expired; create a new one in the console."}
		}
		m.ID, a.ID = NewID(), NewID()
		m.ProviderID, a.ProviderID, a.MachineID = tok.ProviderID, tok.ProviderID, m.ID
		m.CreatedAt, m.UpdatedAt, a.CreatedAt = now, now, now
		if m.RTTJSON == "" {
			m.RTTJSON = "{}"
		}
		res := tx.Model(&EnrollmentToken{}).Where("id = ? AND used_at IS NULL", tok.ID).
			Updates(map[string]any{"used_at": now, "agent_id": a.ID})
		if res.Error != nil {
			return fmt.Errorf("use token: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return &highway.Error{Code: highway.EUNAUTHORIZED, Field: "token", Message: "This enrollment token was already used."}
		}
		if err := tx.Omit("GPUs").Create(m).Error; err != nil {
			return fmt.Errorf("create machine: %w", err)
		}
		err = tx.Create(a).Error
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return &highway.Error{Code: highway.ECONFLICT, Field: "public_key", Message: "This key is already registered."}
		}
		if err != nil {
			return fmt.Errorf("create agent: %w", err)
		}
		return nil
	})
}

// AgentByID returns an agent or ENOTFOUND.
func (s *Store) AgentByID(ctx context.Context, id string) (*Agent, error) {
	var a Agent
	err := s.DB.WithContext(ctx).Where("id = ?", id).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, highway.Errorf(highway.ENOTFOUND, "Agent not found.")
	}
	if err != nil {
		return nil, fmt.Errorf("load agent: %w", err)
	}
	return &a, nil
}

// MachineGPUs returns a machine's GPUs ordered by index.
func (s *Store) MachineGPUs(ctx context.Context, machineID string) ([]GPU, error) {
	var gpus []GPU
	err := s.DB.WithContext(ctx).Where("machine_id = ?", machineID).Order("idx").Find(&gpus).Error
	return gpus, err
}

// HeartbeatUpdate is what one heartbeat changes.
type HeartbeatUpdate struct {
	AgentID       string
	MachineID     string
	BootID        string
	Seq           uint64
	AgentVersion  string
	DriverVersion string
	CUDAVersion   string
	Simulated     bool
	RTTs          map[string]int64
	GPUs          []GPU
	Now           time.Time
}

// ApplyHeartbeat records a heartbeat for the agent's machine (the caller
// has loaded the agent to check continuity, so it passes MachineID rather
// than have it read again). It is atomic, and refuses a beat
// that is not newer than the last one applied (same boot, seq not above),
// so a delayed duplicate can never overwrite fresher state. A GPU UUID
// another machine owns is ECONFLICT.
func (s *Store) ApplyHeartbeat(ctx context.Context, u HeartbeatUpdate) error {
	now := u.Now.UTC()
	rtt, err := json.Marshal(u.RTTs)
	if err != nil {
		return err
	}
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&Agent{}).
			Where("id = ? AND (boot_id <> ? OR last_seq < ?)", u.AgentID, u.BootID, u.Seq).
			Updates(map[string]any{"boot_id": u.BootID, "last_seq": u.Seq, "last_seen_at": now})
		if res.Error != nil {
			return fmt.Errorf("update agent: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return &highway.Error{Code: highway.ECONFLICT, Field: "seq", Message: "Heartbeat is not newer than the last one applied."}
		}
		err := tx.Model(&Machine{}).Where("id = ?", u.MachineID).Updates(map[string]any{
			"agent_version": u.AgentVersion, "driver_version": u.DriverVersion, "cuda_version": u.CUDAVersion,
			"simulated": u.Simulated, "rtt_json": string(rtt), "last_heartbeat_at": now, "updated_at": now,
		}).Error
		if err != nil {
			return fmt.Errorf("update machine: %w", err)
		}
		if err := tx.Where("machine_id = ?", u.MachineID).Delete(&GPU{}).Error; err != nil {
			return fmt.Errorf("replace gpus: %w", err)
		}
		for i := range u.GPUs {
			u.GPUs[i].MachineID, u.GPUs[i].UpdatedAt = u.MachineID, now
		}
		if len(u.GPUs) > 0 {
			err := tx.Create(&u.GPUs).Error
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return &highway.Error{Code: highway.ECONFLICT, Field: "gpus", Message: "A GPU in this heartbeat belongs to another machine."}
			}
			if err != nil {
				return fmt.Errorf("store gpus: %w", err)
			}
		}
		return nil
	})
}

// ProviderMachines lists a provider's machines with their GPUs.
func (s *Store) ProviderMachines(ctx context.Context, providerID string) ([]Machine, error) {
	var ms []Machine
	err := s.DB.WithContext(ctx).Preload("GPUs", func(db *gorm.DB) *gorm.DB { return db.Order("idx") }).
		Where("provider_id = ?", providerID).Order("created_at").Find(&ms).Error
	return ms, err
}

// MachineByID returns a machine with its GPUs, or ENOTFOUND.
func (s *Store) MachineByID(ctx context.Context, id string) (*Machine, error) {
	var m Machine
	err := s.DB.WithContext(ctx).Preload("GPUs", func(db *gorm.DB) *gorm.DB { return db.Order("idx") }).Where("id = ?", id).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, highway.Errorf(highway.ENOTFOUND, "Machine not found.")
	}
	return &m, err
}

// GPUOwner returns the machine a GPU UUID is recorded on ("" if none).
func (s *Store) GPUOwner(ctx context.Context, uuid string) (string, error) {
	var g GPU
	err := s.DB.WithContext(ctx).Select("machine_id").Where("uuid = ?", uuid).Take(&g).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", nil
	}
	return g.MachineID, err
}

// MachineUptime is a machine's online time on one UTC day (day: days
// since 1970-01-01), in milliseconds.
type MachineUptime struct {
	MachineID string `gorm:"primaryKey"`
	Day       int32  `gorm:"primaryKey;autoIncrement:false"`
	OnlineMS  int64  `gorm:"column:online_ms"`
}

func (MachineUptime) TableName() string { return "machine_uptime" }

// PutUptime stores whole-day figures, replacing what a day held.
func (s *Store) PutUptime(ctx context.Context, rows []MachineUptime) error {
	if len(rows) == 0 {
		return nil
	}
	return s.DB.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "machine_id"}, {Name: "day"}},
		DoUpdates: clause.AssignmentColumns([]string{"online_ms"}),
	}).CreateInBatches(&rows, 500).Error
}

// UptimeSince lists every machine's days from day on, in machine and day
// order.
func (s *Store) UptimeSince(ctx context.Context, day int32) ([]MachineUptime, error) {
	var out []MachineUptime
	err := s.DB.WithContext(ctx).Where("day >= ?", day).Order("machine_id, day").Find(&out).Error
	return out, err
}

// DeleteUptimeBefore drops the days before day: they are outside every
// window reliability looks at.
func (s *Store) DeleteUptimeBefore(ctx context.Context, day int32) error {
	return s.DB.WithContext(ctx).Where("day < ?", day).Delete(&MachineUptime{}).Error
}
