package accounts_test

import (
	"context"
	"fmt"
	"sync"
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
	_, e1 := svc.Login(ctx, accounts.LoginInput{Email: "nobody@b.io", Password: "0123456789", IP: "1.2.3.4", UserAgent: "ua"})
	_, e2 := svc.Login(ctx, accounts.LoginInput{Email: "a@b.io", Password: "wrongwrong", IP: "1.2.3.4", UserAgent: "ua"})
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
	res, err := svc.Login(ctx, accounts.LoginInput{Email: "a@b.io", Password: "new password 9", IP: "1.2.3.4", UserAgent: "ua"})
	if err != nil {
		t.Fatalf("login with reset password: %v", err)
	}
	// The owner hears of the failed attempt (the wrong password above), once.
	if res.Failed.Count != 1 || res.Failed.LastIP != "1.2.3.4" || res.Failed.LastAt == nil {
		t.Fatalf("failures reported = %+v", res.Failed)
	}
	if res, err = svc.Login(ctx, accounts.LoginInput{Email: "a@b.io", Password: "new password 9", IP: "1.2.3.4"}); err != nil || res.Failed.Count != 0 {
		t.Fatalf("second login: %+v, %v", res, err)
	}
}

// TestLockoutCannotBeTurnedOnTheOwner is the lockout attack: a stranger
// sends wrong passwords for someone else's address. From the stranger's
// address the account is refused after 10 tries; from the owner's it
// still opens (slower while the account is under attack, at once from a
// browser the owner signed in from before); and attempts from many
// addresses at once are served one at a time, so they cannot guess faster
// than one a SlowLaneDelay, and past SlowLaneMaxWait they get 429.
func TestLockoutCannotBeTurnedOnTheOwner(t *testing.T) {
	ctx := context.Background()
	const delay = 40 * time.Millisecond
	svc := accounts.New(dbtest.SQLite(t), accounts.Config{Hash: cheap, SlowLaneDelay: delay, SlowLaneMaxWait: 400 * time.Millisecond,
		LoginPerIP: accounts.NewLimiter(1000, time.Minute)})
	victim, _, err := svc.Signup(ctx, accounts.SignupInput{Email: "victim@b.io", Password: "the right one!", Buyer: true}, "10.0.0.1", "ua")
	if err != nil {
		t.Fatal(err)
	}
	login := func(pw, ip, device string) (*accounts.LoginResult, error) {
		return svc.Login(ctx, accounts.LoginInput{Email: "victim@b.io", Password: pw, IP: ip, Device: device})
	}
	for i := 0; i < 10; i++ {
		if _, err := login("wrong guess", "6.6.6.6", ""); highway.ErrorCode(err) != highway.EINVALID {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if _, err := login("the right one!", "6.6.6.6", ""); highway.ErrorCode(err) != highway.ERATELIMITED {
		t.Fatalf("the attacker's address after 10 failures: %v, want 429", err)
	}
	// The owner, elsewhere, without a device cookie: slowed, not refused.
	start := time.Now()
	res, err := login("the right one!", "10.0.0.2", "")
	if err != nil || time.Since(start) < delay {
		t.Fatalf("the owner from another address: %v after %s (want success after the slow lane)", err, time.Since(start))
	}
	if res.Failed.Count != 10 || res.Failed.LastIP != "6.6.6.6" {
		t.Fatalf("the owner is told %+v, want 10 failures from 6.6.6.6", res.Failed)
	}
	// With the device cookie of this account: no wait at all.
	start = time.Now()
	if _, err := login("the right one!", "10.0.0.3", victim.ID); err != nil || time.Since(start) >= delay {
		t.Fatalf("the owner's known browser: %v after %s", err, time.Since(start))
	}
	// A botnet: 20 addresses at once. One attempt at a time, each taking
	// the delay; those that would wait past the limit get 429.
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	start = time.Now()
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := login("wrong guess", fmt.Sprintf("7.7.7.%d", i), "")
			mu.Lock()
			codes[highway.ErrorCode(err)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	served := codes[highway.EINVALID]
	if served == 0 || codes[highway.ERATELIMITED] == 0 || time.Since(start) < time.Duration(served)*delay {
		t.Fatalf("20 parallel guesses: %v in %s; want one at a time (≥ %d × %s) and the rest 429", codes, time.Since(start), served, delay)
	}
	t.Logf("20 parallel guesses from 20 addresses: %v in %s", codes, time.Since(start).Round(time.Millisecond))
}
