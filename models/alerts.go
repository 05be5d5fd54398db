package models

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/highway-compute/highway"
)

// Notification is an alert for a user: shown under the bell, sent to the
// user's webhooks.
type Notification struct {
	ID        string `gorm:"primaryKey"`
	UserID    string
	Kind      string
	Text      string
	Link      string
	Dedupe    string
	CreatedAt time.Time
	ReadAt    *time.Time
}

// Webhook is an endpoint a user's alerts are posted to.
type Webhook struct {
	ID        string `gorm:"primaryKey"`
	UserID    string
	URL       string `gorm:"column:url"`
	Secret    string
	CreatedAt time.Time
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed" // gave up after a day of retries
)

// WebhookDelivery is one notification's delivery to one webhook.
type WebhookDelivery struct {
	ID        string `gorm:"primaryKey"`
	WebhookID string
	UserID    string
	Kind      string
	Body      string
	Status    string
	Attempts  int64
	LastCode  int64
	LastError string
	NextAt    time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// AddNotification stores n and queues a delivery of body to each of the
// user's webhooks, in one transaction. A notification whose (user,
// dedupe) exists already is not stored again: added is false.
func (s *Store) AddNotification(ctx context.Context, n *Notification, body func(*Notification) string) (added bool, err error) {
	if n.ID == "" {
		n.ID = NewID()
	}
	now := time.Now().UTC()
	n.CreatedAt = now
	err = s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(n)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return nil
		}
		added = true
		var hooks []Webhook
		if err := tx.Where("user_id = ?", n.UserID).Order("id").Find(&hooks).Error; err != nil {
			return err
		}
		b := body(n)
		for _, h := range hooks {
			d := WebhookDelivery{ID: NewID(), WebhookID: h.ID, UserID: n.UserID, Kind: n.Kind, Body: b, Status: DeliveryPending,
				NextAt: now, CreatedAt: now, UpdatedAt: now}
			if err := tx.Create(&d).Error; err != nil {
				return err
			}
		}
		return nil
	})
	return added, err
}

// Notifications lists a user's notifications, newest first.
func (s *Store) Notifications(ctx context.Context, userID string, limit int) ([]Notification, error) {
	var out []Notification
	err := s.DB.WithContext(ctx).Where("user_id = ?", userID).Order("created_at DESC, id DESC").Limit(limit).Find(&out).Error
	return out, err
}

// UnreadNotifications counts a user's unread notifications.
func (s *Store) UnreadNotifications(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := s.DB.WithContext(ctx).Model(&Notification{}).Where("user_id = ? AND read_at IS NULL", userID).Count(&n).Error
	return n, err
}

// MarkNotificationsRead marks every notification of the user read.
func (s *Store) MarkNotificationsRead(ctx context.Context, userID string) error {
	return s.DB.WithContext(ctx).Model(&Notification{}).Where("user_id = ? AND read_at IS NULL", userID).
		Update("read_at", time.Now().UTC()).Error
}

// AddWebhook stores a webhook unless the user has max already (ECONFLICT).
func (s *Store) AddWebhook(ctx context.Context, h *Webhook, max int) error {
	if h.ID == "" {
		h.ID = NewID()
	}
	h.CreatedAt = time.Now().UTC()
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Two additions cannot both slip under the cap.
		if err := s.lockUser(tx, h.UserID); err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&Webhook{}).Where("user_id = ?", h.UserID).Count(&n).Error; err != nil {
			return err
		}
		if n >= int64(max) {
			return highway.Errorf(highway.ECONFLICT, "You have %d webhooks, the most allowed. Delete one first.", max)
		}
		return tx.Create(h).Error
	})
}

// Webhooks lists a user's webhooks, oldest first.
func (s *Store) Webhooks(ctx context.Context, userID string) ([]Webhook, error) {
	var out []Webhook
	err := s.DB.WithContext(ctx).Where("user_id = ?", userID).Order("created_at, id").Find(&out).Error
	return out, err
}

// Webhook returns the user's webhook, or ENOTFOUND (also for another
// user's).
func (s *Store) Webhook(ctx context.Context, userID, id string) (*Webhook, error) {
	var h Webhook
	err := s.DB.WithContext(ctx).Where("id = ? AND user_id = ?", id, userID).Take(&h).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, highway.Errorf(highway.ENOTFOUND, "Webhook not found.")
	}
	return &h, err
}

// DeleteWebhook deletes the user's webhook and its pending deliveries.
func (s *Store) DeleteWebhook(ctx context.Context, userID, id string) error {
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Where("id = ? AND user_id = ?", id, userID).Delete(&Webhook{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return highway.Errorf(highway.ENOTFOUND, "Webhook not found.")
		}
		return tx.Where("webhook_id = ?", id).Delete(&WebhookDelivery{}).Error
	})
}

// AddDelivery queues one delivery (a test).
func (s *Store) AddDelivery(ctx context.Context, d *WebhookDelivery) error {
	now := time.Now().UTC()
	if d.ID == "" {
		d.ID = NewID()
	}
	d.Status, d.NextAt, d.CreatedAt, d.UpdatedAt = DeliveryPending, now, now, now
	return s.DB.WithContext(ctx).Create(d).Error
}

// DueDeliveries lists pending deliveries due by now, oldest first.
func (s *Store) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]WebhookDelivery, error) {
	var out []WebhookDelivery
	err := s.DB.WithContext(ctx).Where("status = ? AND next_at <= ?", DeliveryPending, now.UTC()).Order("next_at, id").Limit(limit).Find(&out).Error
	return out, err
}

// RecordDelivery writes an attempt's outcome.
func (s *Store) RecordDelivery(ctx context.Context, d *WebhookDelivery) error {
	d.UpdatedAt = time.Now().UTC()
	return s.DB.WithContext(ctx).Model(&WebhookDelivery{}).Where("id = ?", d.ID).Updates(map[string]any{
		"status": d.Status, "attempts": d.Attempts, "last_code": d.LastCode, "last_error": d.LastError, "next_at": d.NextAt.UTC(),
		"updated_at": d.UpdatedAt}).Error
}

// Deliveries lists a webhook's latest deliveries, newest first.
func (s *Store) Deliveries(ctx context.Context, webhookID string, limit int) ([]WebhookDelivery, error) {
	var out []WebhookDelivery
	err := s.DB.WithContext(ctx).Where("webhook_id = ?", webhookID).Order("created_at DESC, id DESC").Limit(limit).Find(&out).Error
	return out, err
}

// SetBalanceAlert sets a user's low-balance threshold (uhwy, 0: off).
func (s *Store) SetBalanceAlert(ctx context.Context, userID string, below int64) error {
	return s.DB.WithContext(ctx).Model(&User{}).Where("id = ?", userID).
		Updates(map[string]any{"alert_balance_below": below, "alert_balance_low": false, "updated_at": time.Now().UTC()}).Error
}

// BalanceAlerts lists the users with a low-balance threshold, by id,
// after the given id (a page of them).
func (s *Store) BalanceAlerts(ctx context.Context, after string, limit int) ([]User, error) {
	var out []User
	err := s.DB.WithContext(ctx).Where("alert_balance_below > 0 AND disabled_at IS NULL AND id > ?", after).Order("id").Limit(limit).Find(&out).Error
	return out, err
}

// PendingDeliveries counts a webhook's pending deliveries of a kind.
func (s *Store) PendingDeliveries(ctx context.Context, webhookID, kind string) (int64, error) {
	var n int64
	err := s.DB.WithContext(ctx).Model(&WebhookDelivery{}).Where("webhook_id = ? AND kind = ? AND status = ?", webhookID, kind, DeliveryPending).Count(&n).Error
	return n, err
}

// SetBalanceLow records whether a user's balance is below their threshold.
func (s *Store) SetBalanceLow(ctx context.Context, userID string, low bool) error {
	return s.DB.WithContext(ctx).Model(&User{}).Where("id = ?", userID).Update("alert_balance_low", low).Error
}

// LeasesEndingBefore lists active leases ending before t, soonest first.
func (s *Store) LeasesEndingBefore(ctx context.Context, t time.Time, limit int) ([]Lease, error) {
	var out []Lease
	err := s.DB.WithContext(ctx).Where("status = ? AND ends_at < ?", LeaseActive, t.UTC()).Order("ends_at, id").Limit(limit).Find(&out).Error
	return out, err
}
