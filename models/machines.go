package models

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/highway-compute/highway"
)

// SetMachineVerified records the outcome of a machine's verification PoC
// and, when it cleared, the rate it measured (milli-H100 per GPU).
func (s *Store) SetMachineVerified(ctx context.Context, machineID string, at *time.Time, verifyErr string, measuredMilliH100 int64) error {
	u := map[string]any{"verified_at": at, "verify_error": verifyErr}
	if at != nil {
		u["measured_milli_h100"] = measuredMilliH100
	}
	return s.DB.WithContext(ctx).Model(&Machine{}).Where("id = ?", machineID).Updates(u).Error
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
