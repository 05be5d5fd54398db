package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

func TestMigrationsUpOnEmptyDatabase(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		v, err := s.MigrationVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v < 1 {
			t.Fatalf("migration version = %d, want >= 1", v)
		}
		// Migrating again is a no-op, not an error: every replica migrates
		// at start.
		if err := s.Migrate(ctx, nil); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		for _, table := range []string{"users", "sessions"} {
			if !s.DB.Migrator().HasTable(table) {
				t.Errorf("table %s missing after migrate", table)
			}
		}
	})
}

func TestUsers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		u := &models.User{Email: "  Alice@Example.COM ", Name: "Alice", PasswordHash: "h", IsBuyer: true}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if u.ID == "" || u.Email != "alice@example.com" {
			t.Fatalf("created user = %+v", u)
		}
		got, err := s.UserByEmail(ctx, "ALICE@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != u.ID || !got.IsBuyer || got.IsAdmin || got.Disabled() {
			t.Fatalf("loaded user = %+v", got)
		}
		if got.CreatedAt.IsZero() || got.CreatedAt.Location() != time.UTC {
			t.Errorf("created_at = %v, want a UTC time", got.CreatedAt)
		}

		dup := &models.User{Email: "alice@example.com", PasswordHash: "h"}
		err = s.CreateUser(ctx, dup)
		if highway.ErrorCode(err) != highway.ECONFLICT || highway.ErrorField(err) != "email" {
			t.Fatalf("duplicate email: err = %v, want conflict on email", err)
		}

		if _, err := s.UserByID(ctx, "nope"); highway.ErrorCode(err) != highway.ENOTFOUND {
			t.Fatalf("missing user: err = %v", err)
		}
		if err := s.SetUserRoles(ctx, u.ID, true, true, false); err != nil {
			t.Fatal(err)
		}
		got, _ = s.UserByID(ctx, u.ID)
		if want := []string{"buyer", "provider"}; len(got.Roles()) != 2 || got.Roles()[1] != want[1] {
			t.Fatalf("roles = %v, want %v", got.Roles(), want)
		}
		if err := s.SetUserRoles(ctx, "nope", true, false, false); highway.ErrorCode(err) != highway.ENOTFOUND {
			t.Fatalf("roles of missing user: %v", err)
		}
	})
}

func TestListUsersPaginates(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		for _, e := range []string{"a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io"} {
			if err := s.CreateUser(ctx, &models.User{Email: e, PasswordHash: "h"}); err != nil {
				t.Fatal(err)
			}
		}
		var seen []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			users, next, err := s.ListUsers(ctx, cursor, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range users {
				seen = append(seen, u.Email)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		want := "a@x.io b@x.io c@x.io d@x.io e@x.io"
		if got := join(seen); got != want {
			t.Fatalf("pages = %q, want %q (creation order)", got, want)
		}
	})
}

func TestSessions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		now := time.Now().UTC()
		u := &models.User{Email: "s@x.io", PasswordHash: "h"}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		live := &models.Session{IDHash: "live", UserID: u.ID, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
		old := &models.Session{IDHash: "old", UserID: u.ID, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(-time.Second)}
		for _, sess := range []*models.Session{live, old} {
			if err := s.CreateSession(ctx, sess); err != nil {
				t.Fatal(err)
			}
		}
		if _, got, err := s.SessionUser(ctx, "live", now); err != nil || got.ID != u.ID {
			t.Fatalf("live session: user %v err %v", got, err)
		}
		if _, _, err := s.SessionUser(ctx, "old", now); highway.ErrorCode(err) != highway.ENOTFOUND {
			t.Fatalf("expired session: err = %v, want not_found", err)
		}
		n, err := s.DeleteExpiredSessions(ctx, now)
		if err != nil || n != 1 {
			t.Fatalf("delete expired = %d, %v; want 1", n, err)
		}
		// Disabling a user ends its sessions at once.
		if err := s.SetUserDisabled(ctx, u.ID, true); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.CountSessions(ctx, u.ID); c != 0 {
			t.Fatalf("sessions after disable = %d, want 0", c)
		}
		got, _ := s.UserByID(ctx, u.ID)
		if !got.Disabled() {
			t.Fatal("user not disabled")
		}
		if err := s.SetUserDisabled(ctx, u.ID, false); err != nil {
			t.Fatal(err)
		}
		got, _ = s.UserByID(ctx, u.ID)
		if got.Disabled() {
			t.Fatal("user still disabled after enable")
		}
		if err := s.DeleteSession(ctx, "missing"); err != nil {
			t.Fatalf("logout of a missing session must succeed: %v", err)
		}
	})
}

func join(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out
}
