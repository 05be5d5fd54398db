package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
)

// TestDeposedLeaderCannotWrite is the fencing a leader election needs: a
// leader whose session ended (and that has not noticed yet: its watch
// interval is an hour) still has a pool of connections, and its late
// writes are refused once another replica has taken over, while the new
// leader writes.
func TestDeposedLeaderCannotWrite(t *testing.T) {
	ctx := context.Background()
	dsn := dbtest.PostgresDSN(t)
	a, b := dbtest.Open(t, dsn), dbtest.Open(t, dsn)

	la, err := a.TryLeadership(ctx, "replica-a", "http://replica-a", time.Hour)
	if err != nil || la == nil || la.Term != 1 {
		t.Fatalf("first leadership: %+v, %v", la, err)
	}
	if lb, err := b.TryLeadership(ctx, "replica-b", "http://replica-b", time.Hour); lb != nil || err != nil {
		t.Fatalf("a second replica took the leadership while the first held it: %+v, %v", lb, err)
	}
	if err := a.SetCursor(ctx, "test", 1); err != nil {
		t.Fatalf("the leader's write: %v", err)
	}
	if err := a.PublishGeneration(ctx, 7); err != nil {
		t.Fatalf("the leader publishes its generation: %v", err)
	}

	dbtest.EndLeaderSession(t, b)
	lb, err := b.AwaitLeadership(ctx, "replica-b", "http://replica-b", 20*time.Millisecond, time.Hour, nil)
	if err != nil || lb.Term != 2 {
		t.Fatalf("takeover: %+v, %v", lb, err)
	}
	// Every replica reads where the new leader answers.
	if rec, err := a.Leader(ctx); err != nil || rec != (models.LeaderRecord{Term: 2, Holder: "replica-b", URL: "http://replica-b", Generation: 7}) {
		t.Fatalf("leader record after the takeover: %+v, %v", rec, err)
	}
	// A has not noticed (no ping for an hour) and writes through its pool.
	for i := range 3 {
		if err := a.SetCursor(ctx, "test", 100+int64(i)); !errors.Is(err, models.ErrDeposed) {
			t.Fatalf("the deposed leader's write %d: %v, want ErrDeposed", i, err)
		}
	}
	if err := a.PublishGeneration(ctx, 99); !errors.Is(err, models.ErrDeposed) {
		t.Fatalf("the deposed leader publishes its generation: %v, want ErrDeposed", err)
	}
	if err := b.SetCursor(ctx, "test", 2); err != nil {
		t.Fatalf("the new leader's write: %v", err)
	}
	if err := b.PublishGeneration(ctx, 3); err != nil {
		t.Fatalf("the new leader publishes its generation: %v", err)
	}
	if rec, err := a.Leader(ctx); err != nil || rec.Generation != 3 {
		t.Fatalf("generation after the new leader published: %+v, %v", rec, err)
	}
	if h, err := b.Cursor(ctx, "test"); err != nil || h != 2 {
		t.Fatalf("cursor = %d, %v: a deposed write landed", h, err)
	}

	// A clean release hands over at once, with the next term.
	lb.Release()
	c := dbtest.Open(t, dsn)
	lc, err := c.TryLeadership(ctx, "replica-c", "http://replica-c", time.Hour)
	if err != nil || lc == nil || lc.Term != 3 {
		t.Fatalf("after release: %+v, %v", lc, err)
	}
	defer lc.Release()
	if err := b.SetCursor(ctx, "test", 3); !errors.Is(err, models.ErrDeposed) {
		t.Fatalf("write after release: %v, want ErrDeposed", err)
	}
}

// TestLeadershipNoticesItsLostSession: the watcher sees the session gone
// and closes Lost, so the replica stops serving as the leader.
func TestLeadershipNoticesItsLostSession(t *testing.T) {
	ctx := context.Background()
	s := dbtest.Postgres(t)
	l, err := s.TryLeadership(ctx, "replica-a", "http://replica-a", 20*time.Millisecond)
	if err != nil || l == nil {
		t.Fatalf("leadership: %v", err)
	}
	dbtest.EndLeaderSession(t, s)
	select {
	case <-l.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("the lost session went unnoticed")
	}
	if l.Err() == nil {
		t.Fatal("Lost closed without a reason")
	}
	if err := s.SetCursor(ctx, "test", 1); !errors.Is(err, models.ErrDeposed) {
		t.Fatalf("write after the loss: %v, want ErrDeposed", err)
	}
}

// On SQLite there is one process: leadership is immediate and unfenced.
func TestLeadershipOnSQLite(t *testing.T) {
	s := dbtest.SQLite(t)
	l, err := s.TryLeadership(context.Background(), "only", "http://only", time.Second)
	if err != nil || l == nil || l.Term != 0 {
		t.Fatalf("%+v, %v", l, err)
	}
	l.Release()
	if err := s.SetCursor(context.Background(), "test", 1); err != nil {
		t.Fatal(err)
	}
}

// TestTakeoverWaitsForTheLeadersOpenWrite: a write of the old leader that
// is inside its transaction when the takeover starts commits first, and
// the new term begins after it, never alongside it.
func TestTakeoverWaitsForTheLeadersOpenWrite(t *testing.T) {
	ctx := context.Background()
	dsn := dbtest.PostgresDSN(t)
	a, b := dbtest.Open(t, dsn), dbtest.Open(t, dsn)
	if l, err := a.TryLeadership(ctx, "replica-a", "http://replica-a", time.Hour); err != nil || l == nil {
		t.Fatalf("leadership: %v", err)
	}
	tx := a.DB.WithContext(ctx).Begin()
	if err := tx.Create(&models.ChainCursor{Name: "open", Height: 1}).Error; err != nil {
		t.Fatal(err)
	}
	dbtest.EndLeaderSession(t, b)
	took := make(chan int64, 1)
	go func() {
		l, err := b.AwaitLeadership(ctx, "replica-b", "http://replica-b", 10*time.Millisecond, time.Hour, nil)
		if err != nil {
			took <- -1
			return
		}
		took <- l.Term
	}()
	select {
	case term := <-took:
		t.Fatalf("the takeover (term %d) finished while the old leader's write was open", term)
	case <-time.After(500 * time.Millisecond):
	}
	if err := tx.Commit().Error; err != nil {
		t.Fatalf("the old leader's open write: %v", err)
	}
	if term := <-took; term != 2 {
		t.Fatalf("takeover term %d", term)
	}
	if h, err := b.Cursor(ctx, "open"); err != nil || h != 1 {
		t.Fatalf("the write committed before the takeover is gone: %d, %v", h, err)
	}
}

// TestStandbyWaitsOutADatabaseOutage: a standby whose database sessions
// are cut while it waits (every session but the leader's lock and the
// one cutting) reports the failed tries and keeps trying; it takes over
// once the leader lets go. Exiting on such a blip would leave the market
// with no replica to take over.
func TestStandbyWaitsOutADatabaseOutage(t *testing.T) {
	ctx := context.Background()
	dsn := dbtest.PostgresDSN(t)
	a, b, cut := dbtest.Open(t, dsn), dbtest.Open(t, dsn), dbtest.Open(t, dsn)
	la, err := a.TryLeadership(ctx, "replica-a", "http://replica-a", time.Hour)
	if err != nil || la == nil {
		t.Fatalf("first leadership: %+v, %v", la, err)
	}
	failures := make(chan error, 100)
	got := make(chan *models.Leadership, 1)
	go func() {
		lb, err := b.AwaitLeadership(ctx, "replica-b", "http://replica-b", 20*time.Millisecond, time.Hour, func(err error) { failures <- err })
		if err != nil {
			t.Errorf("await: %v", err)
		}
		got <- lb
	}()
	// Cut every other session of this database until the standby has
	// noticed, as an outage would.
	deadline := time.Now().Add(10 * time.Second)
	for len(failures) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the standby never noticed its sessions were cut")
		}
		err := cut.DB.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()
			AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)`).Error
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("the standby's try failed and it kept waiting: %v", <-failures)
	select {
	case lb := <-got:
		t.Fatalf("the standby stopped waiting while the leader held on: %+v", lb)
	case <-time.After(200 * time.Millisecond):
	}
	la.Release()
	select {
	case lb := <-got:
		if lb == nil || lb.Term != la.Term+1 {
			t.Fatalf("takeover after the outage: %+v", lb)
		}
		lb.Release()
	case <-time.After(10 * time.Second):
		t.Fatal("the standby did not take over after the outage")
	}
}
