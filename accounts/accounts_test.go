package accounts_test

import (
	"context"
	"testing"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models/dbtest"
)

var cheap = accounts.HashParams{MemoryKiB: 64, Time: 1, Threads: 1}

func TestPasswordHash(t *testing.T) {
	h, err := accounts.HashPassword("correct horse", cheap)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := accounts.HashPassword("correct horse", cheap)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt missing")
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{{"correct horse", true}, {"correct horsE", false}, {"", false}} {
		ok, err := accounts.CheckPassword(h, tc.pw)
		if err != nil || ok != tc.want {
			t.Errorf("CheckPassword(%q) = %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
	for _, bad := range []string{"", "$bcrypt$x", "$argon2id$v=18$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=x$AA$AA"} {
		if _, err := accounts.CheckPassword(bad, "x"); err == nil {
			t.Errorf("CheckPassword accepted malformed hash %q", bad)
		}
	}
}

func TestLimiterSlidingWindow(t *testing.T) {
	l := accounts.NewLimiter(2, time.Minute)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		at        time.Duration
		key       string
		ok        bool
		retryWant time.Duration
	}{
		{0, "a", true, 0},
		{10 * time.Second, "a", true, 0},
		{20 * time.Second, "a", false, 40 * time.Second}, // oldest event at 0 leaves at 60 s
		{20 * time.Second, "b", true, 0},                 // keys are independent
		{60 * time.Second, "a", true, 0},                 // the event at 0 has left the window
		{61 * time.Second, "a", false, 9 * time.Second},
	}
	for i, s := range steps {
		ok, retry := l.Allow(s.key, t0.Add(s.at))
		if ok != s.ok || retry != s.retryWant {
			t.Fatalf("step %d: Allow = %v, %v; want %v, %v", i, ok, retry, s.ok, s.retryWant)
		}
	}
}

func TestValidation(t *testing.T) {
	ok := accounts.SignupInput{Email: "a@b.io", Password: "0123456789", Buyer: true}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid input rejected: %v", err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*accounts.SignupInput)
		field string
	}{
		{"display name in email", func(in *accounts.SignupInput) { in.Email = "Bob <a@b.io>" }, "email"},
		{"no domain dot", func(in *accounts.SignupInput) { in.Email = "a@localhost" }, "email"},
		{"two addresses", func(in *accounts.SignupInput) { in.Email = "a@b.io, c@d.io" }, "email"},
		{"long password", func(in *accounts.SignupInput) { in.Password = string(make([]byte, 257)) }, "password"},
		{"nine runes", func(in *accounts.SignupInput) { in.Password = "ééééééééé" }, "password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ok
			tc.edit(&in)
			err := in.Validate()
			if highway.ErrorCode(err) != highway.EINVALID || highway.ErrorField(err) != tc.field {
				t.Fatalf("Validate = %v, want invalid %s", err, tc.field)
			}
		})
	}
}

func TestLoginAndAdminRules(t *testing.T) {
	s := dbtest.SQLite(t)
	svc := accounts.New(s, accounts.Config{Hash: cheap})
	ctx := context.Background()
	u, tok, err := svc.Signup(ctx, accounts.SignupInput{Email: "a@b.io", Password: "0123456789", Buyer: true}, "1.2.3.4", "ua")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := svc.Authenticate(ctx, tok); err != nil || got.ID != u.ID {
		t.Fatalf("Authenticate = %v, %v", got, err)
	}
	// Unknown email and wrong password look the same.
	_, _, e1 := svc.Login(ctx, "nobody@b.io", "0123456789", "1.2.3.4", "ua")
	_, _, e2 := svc.Login(ctx, "a@b.io", "wrongwrong", "1.2.3.4", "ua")
	if highway.ErrorMessage(e1) != highway.ErrorMessage(e2) || highway.ErrorCode(e1) != highway.EINVALID {
		t.Fatalf("login errors differ: %v / %v", e1, e2)
	}
	if err := svc.Logout(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, tok); highway.ErrorCode(err) != highway.EUNAUTHORIZED {
		t.Fatalf("token alive after logout: %v", err)
	}
	admin, err := svc.EnsureAdmin(ctx, "root@b.io", "0123456789")
	if err != nil || !admin.IsAdmin {
		t.Fatalf("EnsureAdmin = %+v, %v", admin, err)
	}
	if err := svc.SetRoles(ctx, u, admin.ID, true, true, false); highway.ErrorCode(err) != highway.EFORBIDDEN {
		t.Fatalf("non-admin changed roles: %v", err)
	}
	if err := svc.SetDisabled(ctx, admin, admin.ID, true); highway.ErrorCode(err) != highway.ECONFLICT {
		t.Fatalf("admin disabled self: %v", err)
	}
	// EnsureAdmin on an existing user promotes it and resets the password.
	again, err := svc.EnsureAdmin(ctx, "A@b.io", "new password 9")
	if err != nil || !again.IsAdmin || !again.IsBuyer || again.ID != u.ID {
		t.Fatalf("promote = %+v, %v", again, err)
	}
	if _, _, err := svc.Login(ctx, "a@b.io", "new password 9", "1.2.3.4", "ua"); err != nil {
		t.Fatalf("login with reset password: %v", err)
	}
}
