package accounts_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

func TestGenerateAPIKey(t *testing.T) {
	a, err := accounts.GenerateAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := accounts.GenerateAPIKey()
	if a == b {
		t.Fatal("two keys are equal")
	}
	if !strings.HasPrefix(a, "hwk_") || len(a) != 47 || strings.ContainsAny(a, "+/=") {
		t.Fatalf("key %q: want hwk_ and 43 base64url characters", a)
	}
}

func TestValidateAPIKeyName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"laptop", true},
		{"x", true},
		{strings.Repeat("é", 64), true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{"line\nbreak", false},
		{"nul\x00", false},
	} {
		err := accounts.ValidateAPIKeyName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateAPIKeyName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && (highway.ErrorCode(err) != highway.EINVALID || highway.ErrorField(err) != "name") {
			t.Errorf("ValidateAPIKeyName(%q) = %v, want invalid on name", tc.name, err)
		}
	}
}

func TestAPIKeyLifecycle(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		svc := accounts.New(s, accounts.Config{Hash: cheap, Now: func() time.Time { return clock }})
		u := &models.User{Email: "k@x.io", PasswordHash: "h", IsBuyer: true}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}

		if _, _, err := svc.CreateAPIKey(ctx, u, "   "); highway.ErrorField(err) != "name" {
			t.Fatalf("blank name: err = %v, want a name field error", err)
		}
		k, key, err := svc.CreateAPIKey(ctx, u, "  laptop  ")
		if err != nil {
			t.Fatal(err)
		}
		if k.Name != "laptop" || !strings.HasPrefix(key, k.Prefix) || len(k.Prefix) != 10 {
			t.Fatalf("key %+v for %q: want trimmed name and a 10-character prefix of the key", k, key)
		}
		if k.KeyHash == key || strings.Contains(k.KeyHash, key[4:]) {
			t.Fatal("the key itself is stored")
		}

		got, err := svc.AuthenticateAPIKey(ctx, key)
		if err != nil || got.ID != u.ID {
			t.Fatalf("AuthenticateAPIKey = %v, %v", got, err)
		}
		lastUsed := func() time.Time {
			t.Helper()
			keys, err := svc.APIKeys(ctx, u)
			if err != nil || len(keys) != 1 || keys[0].LastUsedAt == nil {
				t.Fatalf("keys = %+v, %v; want one used key", keys, err)
			}
			return keys[0].LastUsedAt.UTC()
		}
		if lu := lastUsed(); !lu.Equal(clock) {
			t.Fatalf("last used = %v, want %v", lu, clock)
		}
		// Within a minute, use is not written again; after it, it is.
		first := clock
		clock = clock.Add(59 * time.Second)
		if _, err := svc.AuthenticateAPIKey(ctx, key); err != nil {
			t.Fatal(err)
		}
		if lu := lastUsed(); !lu.Equal(first) {
			t.Fatalf("last used rewritten within a minute: %v", lu)
		}
		clock = clock.Add(2 * time.Second)
		if _, err := svc.AuthenticateAPIKey(ctx, key); err != nil {
			t.Fatal(err)
		}
		if lu := lastUsed(); !lu.Equal(clock) {
			t.Fatalf("last used = %v, want %v after a minute", lu, clock)
		}

		for _, bad := range []string{"", "hwk_", key + "x", "hwe_" + key[4:], key[:46] + "A"} {
			if bad == key {
				continue
			}
			if _, err := svc.AuthenticateAPIKey(ctx, bad); highway.ErrorCode(err) != highway.EUNAUTHORIZED {
				t.Errorf("AuthenticateAPIKey(%q): err = %v, want unauthorized", bad, err)
			}
		}

		other := &models.User{Email: "o@x.io", PasswordHash: "h"}
		if err := s.CreateUser(ctx, other); err != nil {
			t.Fatal(err)
		}
		if err := svc.RevokeAPIKey(ctx, other, k.ID); highway.ErrorCode(err) != highway.ENOTFOUND {
			t.Fatalf("revoke by another user: err = %v, want not_found", err)
		}
		if err := svc.RevokeAPIKey(ctx, u, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.AuthenticateAPIKey(ctx, key); highway.ErrorCode(err) != highway.EUNAUTHORIZED {
			t.Fatalf("revoked key: err = %v, want unauthorized", err)
		}
	})
}

func TestAPIKeyCap(t *testing.T) {
	s := dbtest.SQLite(t)
	ctx := context.Background()
	svc := accounts.New(s, accounts.Config{Hash: cheap})
	u := &models.User{Email: "many@x.io", PasswordHash: "h"}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	for range accounts.MaxAPIKeysPerUser {
		if _, _, err := svc.CreateAPIKey(ctx, u, "k"); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := svc.CreateAPIKey(ctx, u, "one too many")
	if highway.ErrorCode(err) != highway.ECONFLICT || !strings.Contains(highway.ErrorMessage(err), "Revoke") {
		t.Fatalf("key over the cap: err = %v, want a conflict telling to revoke one", err)
	}
}
