package models_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

func TestAPIKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Second)
		alice := &models.User{Email: "alice@x.io", PasswordHash: "h"}
		bob := &models.User{Email: "bob@x.io", PasswordHash: "h"}
		for _, u := range []*models.User{alice, bob} {
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		k1 := &models.APIKey{UserID: alice.ID, Name: "laptop", Prefix: "hwk_aaaaaa", KeyHash: "hash1", CreatedAt: now}
		k2 := &models.APIKey{UserID: alice.ID, Name: "CI", Prefix: "hwk_bbbbbb", KeyHash: "hash2", CreatedAt: now.Add(time.Second)}
		for _, k := range []*models.APIKey{k1, k2} {
			if err := s.CreateAPIKey(ctx, k, 20); err != nil {
				t.Fatal(err)
			}
		}
		if k1.ID == "" {
			t.Fatal("CreateAPIKey did not assign an id")
		}
		keys, err := s.APIKeysOf(ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 2 || keys[0].ID != k2.ID || keys[1].ID != k1.ID {
			t.Fatalf("keys of alice = %+v, want CI then laptop (newest first)", keys)
		}
		if keys, _ := s.APIKeysOf(ctx, bob.ID); len(keys) != 0 {
			t.Fatalf("bob sees %d keys, want 0", len(keys))
		}

		k, u, err := s.UserByAPIKeyHash(ctx, "hash1")
		if err != nil || u.ID != alice.ID || k.ID != k1.ID || k.LastUsedAt != nil {
			t.Fatalf("UserByAPIKeyHash = %+v, %+v, %v", k, u, err)
		}
		if _, _, err := s.UserByAPIKeyHash(ctx, "nope"); highway.ErrorCode(err) != highway.EUNAUTHORIZED {
			t.Fatalf("unknown hash: err = %v, want unauthorized", err)
		}

		// A use is recorded, and a second touch within the window is a
		// no-op, so the first time stays.
		if err := s.TouchAPIKey(ctx, k1.ID, now, now.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.TouchAPIKey(ctx, k1.ID, now.Add(30*time.Second), now.Add(-30*time.Second)); err != nil {
			t.Fatal(err)
		}
		k, _, _ = s.UserByAPIKeyHash(ctx, "hash1")
		if k.LastUsedAt == nil || !k.LastUsedAt.Equal(now) {
			t.Fatalf("last_used_at = %v, want %v", k.LastUsedAt, now)
		}

		// Only the owner revokes, once.
		if err := s.RevokeAPIKey(ctx, bob.ID, k1.ID, now); highway.ErrorCode(err) != highway.ENOTFOUND {
			t.Fatalf("bob revoking alice's key: err = %v, want not_found", err)
		}
		if _, _, err := s.UserByAPIKeyHash(ctx, "hash1"); err != nil {
			t.Fatalf("key dead after a refused revoke: %v", err)
		}
		if err := s.RevokeAPIKey(ctx, alice.ID, k1.ID, now); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeAPIKey(ctx, alice.ID, k1.ID, now); highway.ErrorCode(err) != highway.ENOTFOUND {
			t.Fatalf("second revoke: err = %v, want not_found", err)
		}
		if _, _, err := s.UserByAPIKeyHash(ctx, "hash1"); highway.ErrorCode(err) != highway.EUNAUTHORIZED {
			t.Fatalf("revoked key: err = %v, want unauthorized", err)
		}
		if keys, _ := s.APIKeysOf(ctx, alice.ID); len(keys) != 1 || keys[0].ID != k2.ID {
			t.Fatalf("keys after revoke = %+v, want only CI", keys)
		}

		// A disabled user's keys stop working, and work again on enable.
		if err := s.SetUserDisabled(ctx, alice.ID, true); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.UserByAPIKeyHash(ctx, "hash2"); highway.ErrorCode(err) != highway.EUNAUTHORIZED {
			t.Fatalf("disabled user's key: err = %v, want unauthorized", err)
		}
		if err := s.SetUserDisabled(ctx, alice.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.UserByAPIKeyHash(ctx, "hash2"); err != nil {
			t.Fatalf("re-enabled user's key: %v", err)
		}

		// Unknown owners are refused, not left to the foreign key.
		err = s.CreateAPIKey(ctx, &models.APIKey{UserID: "nope", Name: "x", Prefix: "p", KeyHash: "hash-x", CreatedAt: now}, 20)
		if highway.ErrorCode(err) != highway.ENOTFOUND {
			t.Fatalf("key for unknown user: err = %v, want not_found", err)
		}
	})
}

func TestAPIKeyCapCountsLiveKeysOnly(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		now := time.Now().UTC()
		u := &models.User{Email: "cap@x.io", PasswordHash: "h"}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		var first string
		for i := range 3 {
			k := &models.APIKey{UserID: u.ID, Name: "k", Prefix: "p", KeyHash: fmt.Sprint("h", i), CreatedAt: now}
			if err := s.CreateAPIKey(ctx, k, 3); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = k.ID
			}
		}
		over := &models.APIKey{UserID: u.ID, Name: "k", Prefix: "p", KeyHash: "h3", CreatedAt: now}
		if err := s.CreateAPIKey(ctx, over, 3); highway.ErrorCode(err) != highway.ECONFLICT {
			t.Fatalf("key over the cap: err = %v, want conflict", err)
		}
		if err := s.RevokeAPIKey(ctx, u.ID, first, now); err != nil {
			t.Fatal(err)
		}
		over.ID = ""
		if err := s.CreateAPIKey(ctx, over, 3); err != nil {
			t.Fatalf("key after revoking one: %v", err)
		}
	})
}

func TestAPIKeysGoWithTheirUser(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		u := &models.User{Email: "gone@x.io", PasswordHash: "h"}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAPIKey(ctx, &models.APIKey{UserID: u.ID, Name: "k", Prefix: "p", KeyHash: "hg", CreatedAt: time.Now().UTC()}, 20); err != nil {
			t.Fatal(err)
		}
		if err := s.DB.Delete(&models.User{}, "id = ?", u.ID).Error; err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := s.DB.Model(&models.APIKey{}).Where("user_id = ?", u.ID).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%d keys outlive their user, want 0 (ON DELETE CASCADE)", n)
		}
	})
}

func TestAPIKeyCapHoldsUnderConcurrency(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		u := &models.User{Email: "race@x.io", PasswordHash: "h"}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		const tries, limit = 8, 3
		errs := make(chan error, tries)
		for i := range tries {
			go func() {
				k := &models.APIKey{UserID: u.ID, Name: "k", Prefix: "p", KeyHash: fmt.Sprint("race", i), CreatedAt: time.Now().UTC()}
				errs <- s.CreateAPIKey(ctx, k, limit)
			}()
		}
		ok := 0
		for range tries {
			switch err := <-errs; highway.ErrorCode(err) {
			case "":
				ok++
			case highway.ECONFLICT:
			default:
				t.Errorf("concurrent create: %v", err)
			}
		}
		if ok != limit {
			t.Fatalf("%d concurrent creations succeeded, want exactly %d", ok, limit)
		}
	})
}
