package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"
)

// Leadership: any number of `highway serve` replicas may run on one
// PostgreSQL, and exactly one of them runs the broker (the engine's single
// writer, lease creation, the chain indexer). It is elected with a session
// advisory lock, held on one connection for as long as the replica leads:
// a replica that dies, or loses its database session, loses the lock at
// once and a standby takes it.
//
// The lock alone is not enough: a leader that lost its session (a network
// partition, a paused VM) may still have writes on their way through
// other connections of its pool. So each takeover raises the term in
// market_leader, and every write of a leader checks, inside its own
// transaction, that the term is still its own (a KEY SHARE lock on the
// row, which the next takeover's FOR UPDATE waits for). A write either
// commits before the takeover or is refused with ErrDeposed after it.

// leaderLockKey is the advisory lock's key ("hwayldr"); goose's migration
// lock uses another.
const leaderLockKey int64 = 0x687761796c6472

// ErrDeposed is a write refused because another replica has taken over.
var ErrDeposed = errors.New("this replica is no longer the market's leader: another took over")

// Leadership is this replica's hold on the market. Lost is closed when it
// ends; Release gives it up.
type Leadership struct {
	// Term is the takeover count this leadership was granted at.
	Term int64
	// Holder names the replica, as recorded in market_leader.
	Holder string

	store    *Store
	conn     *sql.Conn
	lost     chan struct{}
	lostOnce sync.Once
	err      error
	stop     chan struct{}
	done     chan struct{}
}

// TryLeadership takes the market's leadership if no other replica holds
// it (nil, nil when one does). On SQLite there is one process and no
// election: it always succeeds, with term 0 and no fencing.
//
// url is where the replica answers the others (market_leader.url), so
// that a replica which does not lead can forward to it.
func (s *Store) TryLeadership(ctx context.Context, holder, url string, watch time.Duration) (*Leadership, error) {
	l := &Leadership{Holder: holder, store: s, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	if s.Dialect != DialectPostgres {
		close(l.done)
		return l, nil
	}
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("leadership: %w", err)
	}
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", leaderLockKey).Scan(&got); err != nil || !got {
		_ = conn.Close()
		if err != nil {
			return nil, fmt.Errorf("leadership: %w", err)
		}
		return nil, nil
	}
	l.conn = conn
	// The term rises under FOR UPDATE, which waits for the writes of the
	// previous leader that are still open (they hold KEY SHARE), so each
	// of them commits before this term begins or is refused after.
	err = s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Raw("SELECT term FROM market_leader WHERE id = 1 FOR UPDATE").Scan(&l.Term).Error; err != nil {
			return err
		}
		l.Term++
		return tx.Exec("UPDATE market_leader SET term = ?, holder = ?, url = ?, since = ? WHERE id = 1", l.Term, holder, url, time.Now().UTC()).Error
	})
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("leadership: raise the term: %w", err)
	}
	s.fence.Store(l.Term)
	if watch <= 0 {
		watch = time.Second
	}
	go l.watch(watch)
	return l, nil
}

// AwaitLeadership tries every poll until it leads or ctx ends. A failed
// try (the database unreachable for a moment) is reported to failed, when
// set, and tried again at the next poll: a standby that exited on a
// database blip would leave the market with no replica to take over.
func (s *Store) AwaitLeadership(ctx context.Context, holder, url string, poll, watch time.Duration, failed func(error)) (*Leadership, error) {
	for {
		l, err := s.TryLeadership(ctx, holder, url, watch)
		if l != nil {
			return l, nil
		}
		if err != nil && ctx.Err() == nil && failed != nil {
			failed(err)
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// watch checks the lock's session every interval; a session that is gone
// has taken the lock with it.
func (l *Leadership) watch(every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		// A slow answer is not a lost lock, but a timed-out ping may make
		// the driver drop the connection, which does lose it: so the
		// timeout is generous, and a ping that fails is followed by the
		// connection's close (depose), so no half-dead session is left
		// holding the lock with no one using it.
		ctx, cancel := context.WithTimeout(context.Background(), max(5*time.Second, 5*every))
		err := l.conn.PingContext(ctx)
		cancel()
		if err != nil {
			l.depose(fmt.Errorf("the database session holding the leadership ended: %w", err))
			return
		}
	}
}

// LeaderRecord is market_leader's row: the current term, who holds it,
// where it answers, and its market's change count.
type LeaderRecord struct {
	Term       int64
	Holder     string
	URL        string
	Generation int64
}

// Leader reads who leads the market now (as recorded at the last
// takeover: a leader that died stays recorded until the next one).
func (s *Store) Leader(ctx context.Context) (LeaderRecord, error) {
	var r LeaderRecord
	err := s.DB.WithContext(ctx).Raw("SELECT term, holder, url, generation FROM market_leader WHERE id = 1").Scan(&r).Error
	return r, err
}

// PublishGeneration records the leader's market change count, which
// standbys watch to reload their open pages. Fenced like every leader
// write: a deposed leader cannot publish.
func (s *Store) PublishGeneration(ctx context.Context, generation uint64) error {
	// Through gorm's update chain (not Exec), where the fence is.
	return s.DB.WithContext(ctx).Table("market_leader").Where("id = 1").Update("generation", int64(generation)).Error
}

// depose ends the leadership: from now on every write of this process is
// refused, the lock's connection is closed (its session, and the lock if
// it still held it, end with it), and Lost is closed.
func (l *Leadership) depose(err error) {
	l.lostOnce.Do(func() {
		l.store.fence.Store(fenceDeposed)
		l.err = err
		if l.conn != nil {
			// ErrBadConn makes database/sql close the driver connection
			// rather than return it to the pool with its session alive.
			_ = l.conn.Raw(func(any) error { return driver.ErrBadConn })
			_ = l.conn.Close()
		}
		close(l.lost)
	})
}

// Lost is closed when the leadership ends (Err says why).
func (l *Leadership) Lost() <-chan struct{} { return l.lost }

// Err is why the leadership was lost (nil while it holds).
func (l *Leadership) Err() error {
	select {
	case <-l.lost:
		return l.err
	default:
		return nil
	}
}

// Release gives the leadership up (a clean shutdown): a standby takes
// over at once instead of waiting for the session to time out.
func (l *Leadership) Release() {
	if l.conn == nil {
		return
	}
	select {
	case <-l.stop:
		return
	default:
	}
	close(l.stop)
	<-l.done
	if l.Err() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _ = l.conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", leaderLockKey)
		cancel()
	}
	l.depose(errors.New("released"))
}

// fenceDeposed is the fence of a process whose leadership ended: no term
// is ever negative, so every write is refused.
const fenceDeposed = -1

// registerFence makes every create, update and delete of a leader check
// its term in the statement's own transaction (gorm opens one for every
// write that is not in one already). A process that never led (fence 0:
// a standby, the migrations, tools) is not fenced: it runs no broker.
func (s *Store) registerFence() error {
	check := func(db *gorm.DB) {
		term := s.fence.Load()
		if term == 0 || db.Error != nil {
			return
		}
		if term == fenceDeposed {
			_ = db.AddError(ErrDeposed)
			return
		}
		var cur int64
		row := db.Statement.ConnPool.QueryRowContext(db.Statement.Context, "SELECT term FROM market_leader WHERE id = 1 FOR KEY SHARE")
		if err := row.Scan(&cur); err != nil {
			_ = db.AddError(fmt.Errorf("leadership fence: %w", err))
			return
		}
		if cur != term {
			s.fence.Store(fenceDeposed)
			_ = db.AddError(ErrDeposed)
		}
	}
	cb := s.DB.Callback()
	for _, err := range []error{
		cb.Create().After("gorm:begin_transaction").Before("gorm:create").Register("highway:fence", check),
		cb.Update().After("gorm:begin_transaction").Before("gorm:update").Register("highway:fence", check),
		cb.Delete().After("gorm:begin_transaction").Before("gorm:delete").Register("highway:fence", check),
	} {
		if err != nil {
			return fmt.Errorf("database: register the leadership fence: %w", err)
		}
	}
	return nil
}
