// Package models is the marketplace's persistence: gorm models and the
// Store that queries them, on SQLite (the embedded default, pure Go) or
// PostgreSQL (for scale). Callers get *highway.Error values with codes, never
// driver errors, for anything a user can cause.
package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/google/uuid"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/highway-compute/highway/migrations"
)

// Dialects the store speaks.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Store is the database handle shared by the whole process.
type Store struct {
	DB      *gorm.DB
	Dialect string
	sqlDB   *sql.DB
	// fence is the leadership term this process writes under (leader.go):
	// 0 when it never led, -1 once deposed.
	fence atomic.Int64
}

// IsPostgresDSN reports whether dsn names a PostgreSQL server rather than a
// SQLite file.
func IsPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open connects to dsn: a postgres:// URL, or else a SQLite file path (its
// directory is created). It does not migrate; call Migrate.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg := &gorm.Config{
		// Timestamps are stored in UTC everywhere: SQLite compares them as
		// text and PostgreSQL's TIMESTAMP keeps no zone.
		NowFunc:        func() time.Time { return time.Now().UTC() },
		TranslateError: true,
		Logger:         logger.Discard,
	}
	var (
		db      *gorm.DB
		err     error
		dialect string
	)
	if IsPostgresDSN(dsn) {
		dialect = DialectPostgres
		db, err = gorm.Open(postgres.Open(dsn), cfg)
	} else {
		dialect = DialectSQLite
		if dsn == "" {
			return nil, errors.New("database: empty DSN")
		}
		if dir := filepath.Dir(dsn); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("database: create directory: %w", err)
			}
		}
		db, err = gorm.Open(sqlite.Open(sqliteDSN(dsn)), cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("database: open %s: %w", dialect, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if dialect == DialectSQLite {
		// One SQLite file has one writer; a small pool with WAL and a busy
		// timeout keeps readers concurrent without "database is locked".
		sqlDB.SetMaxOpenConns(8)
	} else {
		sqlDB.SetMaxOpenConns(32)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	s := &Store{DB: db, Dialect: dialect, sqlDB: sqlDB}
	if dialect == DialectPostgres {
		if err := s.registerFence(); err != nil {
			_ = sqlDB.Close()
			return nil, err
		}
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Ping(pingCtx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("database: %s not reachable: %w", dialect, err)
	}
	return s, nil
}

// sqliteDSN adds the pragmas every connection needs: foreign keys on (off
// by default in SQLite), WAL so readers do not block the writer, a busy
// timeout instead of immediate "locked" errors, and IMMEDIATE transactions
// so two writers queue rather than deadlock on upgrade.
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// Migrate applies every pending embedded migration. On PostgreSQL a session
// advisory lock makes concurrent replicas starting together take turns.
func (s *Store) Migrate(ctx context.Context, log *slog.Logger) error {
	p, err := s.migrator(log)
	if err != nil {
		return err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		if log != nil {
			log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
		}
	}
	return nil
}

// MigrationVersion returns the newest applied migration version.
func (s *Store) MigrationVersion(ctx context.Context) (int64, error) {
	p, err := s.migrator(nil)
	if err != nil {
		return 0, err
	}
	return p.GetDBVersion(ctx)
}

func (s *Store) migrator(log *slog.Logger) (*goose.Provider, error) {
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if log != nil {
		opts = append(opts, goose.WithSlog(log))
	}
	dialect := goose.DialectSQLite3
	if s.Dialect == DialectPostgres {
		dialect = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, s.sqlDB, migrations.FS, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return p, nil
}

// Ping checks that the database answers; /readyz uses it.
func (s *Store) Ping(ctx context.Context) error {
	return s.sqlDB.PingContext(ctx)
}

// Close releases the connection pool.
func (s *Store) Close() error {
	return s.sqlDB.Close()
}

// NewID returns a new primary key: a UUIDv7, so keys sort by creation time
// and serve as stable pagination cursors on both databases.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}
