package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/highway-compute/highway"
)

// Roles a user can hold. One user may be buyer and provider; only an admin
// grants admin.
const (
	RoleBuyer    = "buyer"
	RoleProvider = "provider"
	RoleAdmin    = "admin"
)

// User is an account.
type User struct {
	ID           string `gorm:"primaryKey"`
	Email        string
	Name         string
	PasswordHash string
	IsBuyer      bool
	IsProvider   bool
	IsAdmin      bool
	DisabledAt   *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// Failed sign-ins since the last successful one (for the owner's
	// notice at the next login).
	FailedLogins      int
	LastFailedLoginAt *time.Time
	LastFailedLoginIP string
	// The low-balance alert: the threshold in uhwy (0: off) and whether
	// the balance is below it now.
	AlertBalanceBelow int64
	AlertBalanceLow   bool
}

// Disabled reports whether an admin disabled the account.
func (u *User) Disabled() bool { return u.DisabledAt != nil }

// Roles lists the user's roles in a fixed order.
func (u *User) Roles() []string {
	var r []string
	if u.IsBuyer {
		r = append(r, RoleBuyer)
	}
	if u.IsProvider {
		r = append(r, RoleProvider)
	}
	if u.IsAdmin {
		r = append(r, RoleAdmin)
	}
	return r
}

// HasRole reports whether the user holds role.
func (u *User) HasRole(role string) bool {
	switch role {
	case RoleBuyer:
		return u.IsBuyer
	case RoleProvider:
		return u.IsProvider
	case RoleAdmin:
		return u.IsAdmin
	}
	return false
}

// CreateUser inserts u, assigning its ID. A taken email is ECONFLICT on the
// email field, whether the pre-check or the unique index catches it.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	u.Email = strings.ToLower(strings.TrimSpace(u.Email))
	if u.ID == "" {
		u.ID = NewID()
	}
	err := s.DB.WithContext(ctx).Create(u).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return &highway.Error{Code: highway.ECONFLICT, Field: "email", Message: "This email is already registered."}
	}
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

// UserByID returns the user or ENOTFOUND.
func (s *Store) UserByID(ctx context.Context, id string) (*User, error) {
	var u User
	err := s.DB.WithContext(ctx).Where("id = ?", id).Take(&u).Error
	return userResult(&u, err)
}

// UserByEmail returns the user (email matched case-insensitively) or
// ENOTFOUND.
func (s *Store) UserByEmail(ctx context.Context, email string) (*User, error) {
	var u User
	err := s.DB.WithContext(ctx).Where("email = ?", strings.ToLower(strings.TrimSpace(email))).Take(&u).Error
	return userResult(&u, err)
}

func userResult(u *User, err error) (*User, error) {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, highway.Errorf(highway.ENOTFOUND, "User not found.")
	}
	if err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	return u, nil
}

// ListUsers returns up to limit users with IDs after cursor, oldest first,
// and the cursor for the next page ("" at the end).
func (s *Store) ListUsers(ctx context.Context, cursor string, limit int) ([]User, string, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	var users []User
	q := s.DB.WithContext(ctx).Order("id").Limit(limit + 1)
	if cursor != "" {
		q = q.Where("id > ?", cursor)
	}
	if err := q.Find(&users).Error; err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	next := ""
	if len(users) > limit {
		users = users[:limit]
		next = users[limit-1].ID
	}
	return users, next, nil
}

// CountUsers returns the number of accounts.
func (s *Store) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	err := s.DB.WithContext(ctx).Model(&User{}).Count(&n).Error
	return n, err
}

// SetUserRoles replaces the user's roles.
func (s *Store) SetUserRoles(ctx context.Context, id string, buyer, provider, admin bool) error {
	res := s.DB.WithContext(ctx).Model(&User{}).Where("id = ?", id).Updates(map[string]any{
		"is_buyer": buyer, "is_provider": provider, "is_admin": admin, "updated_at": time.Now().UTC(),
	})
	if res.Error != nil {
		return fmt.Errorf("set roles: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return highway.Errorf(highway.ENOTFOUND, "User not found.")
	}
	return nil
}

// SetUserPassword replaces the stored password hash.
func (s *Store) SetUserPassword(ctx context.Context, id, hash string) error {
	res := s.DB.WithContext(ctx).Model(&User{}).Where("id = ?", id).Updates(map[string]any{
		"password_hash": hash, "updated_at": time.Now().UTC(),
	})
	if res.Error != nil {
		return fmt.Errorf("set password: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return highway.Errorf(highway.ENOTFOUND, "User not found.")
	}
	return nil
}

// SetUserDisabled disables or re-enables an account. Disabling also deletes
// the user's sessions in the same transaction, so it takes effect at once.
func (s *Store) SetUserDisabled(ctx context.Context, id string, disabled bool) error {
	now := time.Now().UTC()
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var at any
		if disabled {
			at = now
		}
		res := tx.Model(&User{}).Where("id = ?", id).Updates(map[string]any{"disabled_at": at, "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("set disabled: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return highway.Errorf(highway.ENOTFOUND, "User not found.")
		}
		if disabled {
			if err := tx.Where("user_id = ?", id).Delete(&Session{}).Error; err != nil {
				return fmt.Errorf("drop sessions: %w", err)
			}
		}
		return nil
	})
}

// RecordLoginFailure counts a failed sign-in for the user.
func (s *Store) RecordLoginFailure(ctx context.Context, userID string, at time.Time, ip string) error {
	at = at.UTC()
	return s.DB.WithContext(ctx).Model(&User{}).Where("id = ?", userID).Updates(map[string]any{
		"failed_logins": gorm.Expr("failed_logins + 1"), "last_failed_login_at": &at, "last_failed_login_ip": ip,
	}).Error
}

// LoginFailures is what a user is told about failed sign-ins.
type LoginFailures struct {
	Count  int
	LastAt *time.Time
	LastIP string
}

// TakeLoginFailures returns the user's failed sign-ins since the last
// successful one and starts counting afresh.
func (s *Store) TakeLoginFailures(ctx context.Context, userID string) (LoginFailures, error) {
	var out LoginFailures
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var u User
		if err := tx.Select("failed_logins", "last_failed_login_at", "last_failed_login_ip").Where("id = ?", userID).Take(&u).Error; err != nil {
			return err
		}
		out = LoginFailures{Count: u.FailedLogins, LastAt: u.LastFailedLoginAt, LastIP: u.LastFailedLoginIP}
		if u.FailedLogins == 0 {
			return nil
		}
		return tx.Model(&User{}).Where("id = ?", userID).Update("failed_logins", gorm.Expr("failed_logins - ?", u.FailedLogins)).Error
	})
	return out, err
}
