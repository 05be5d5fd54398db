package models

import (
	"context"
	"time"
)

// SetProviderSuspended records a provider's suspension on every one of
// its machines, with the reason the provider is shown; at nil (and reason
// "") reinstates. The broker holds the matching state; these columns are
// what the provider console shows and what a restart reloads.
func (s *Store) SetProviderSuspended(ctx context.Context, providerID, reason string, at *time.Time) error {
	if at != nil {
		u := at.UTC()
		at = &u
	}
	return s.DB.WithContext(ctx).Model(&Machine{}).Where("provider_id = ?", providerID).
		Updates(map[string]any{"suspended_at": at, "suspend_reason": reason}).Error
}
