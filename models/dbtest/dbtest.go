// Package dbtest gives tests a fresh, migrated database: a SQLite file in a
// temporary directory, and a fresh PostgreSQL database per run when a server
// answers at HIGHWAY_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/test).
// Without a server the PostgreSQL case skips with a message saying so,
// unless HIGHWAY_REQUIRE_POSTGRES=1 (CI), where it fails instead.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for CREATE/DROP DATABASE

	"github.com/highway-compute/highway/models"
)

// DefaultPostgres is the admin DSN used when HIGHWAY_TEST_POSTGRES is unset.
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Each runs fn once per available database, as subtests "sqlite" and
// "postgres", each with its own fresh migrated store.
func Each(t *testing.T, fn func(t *testing.T, s *models.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLiteDSN returns the path of a new SQLite file in a temporary directory.
func SQLiteDSN(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "highway.db")
}

// SQLite returns a migrated store on a new SQLite file.
func SQLite(t *testing.T) *models.Store {
	t.Helper()
	return Open(t, SQLiteDSN(t))
}

// Postgres returns a migrated store on a new PostgreSQL database, dropped
// when the test ends.
func Postgres(t *testing.T) *models.Store {
	t.Helper()
	return Open(t, PostgresDSN(t))
}

// PostgresDSN creates a new, empty PostgreSQL database for this test and
// returns its DSN; it is dropped when the test ends. It skips (or fails in
// CI) when no server answers.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("HIGHWAY_TEST_POSTGRES")
	if admin == "" {
		admin = DefaultPostgres
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", admin)
	if err == nil {
		err = db.PingContext(ctx)
	}
	if err != nil {
		if db != nil {
			_ = db.Close()
		}
		if os.Getenv("HIGHWAY_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL required (HIGHWAY_REQUIRE_POSTGRES=1) but not reachable at %s: %v", redact(admin), err)
		}
		t.Skipf("skipping PostgreSQL test: no server reachable at %s (%v); set HIGHWAY_TEST_POSTGRES to run it", redact(admin), err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "highway_test_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		_ = db.Close()
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
		_ = db.Close()
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse HIGHWAY_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Open returns a migrated store on dsn, closed when the test ends (two
// of them on one PostgreSQL DSN are two replicas).
func Open(t testing.TB, dsn string) *models.Store {
	t.Helper()
	ctx := context.Background()
	s, err := models.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	if err := s.Migrate(ctx, nil); err != nil {
		_ = s.Close()
		t.Fatalf("migrate: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return u.Redacted()
}

// EndLeaderSession ends the database session that holds the market's
// leadership lock (models.TryLeadership), as the leader's death or a
// network partition would end it. Any store on the same database can
// send it.
func EndLeaderSession(t testing.TB, s *models.Store) {
	t.Helper()
	var n int64
	err := s.DB.Raw(`SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n).Error
	if err != nil || n != 1 {
		t.Fatalf("end the leader's session: %d sessions, %v", n, err)
	}
}

// SQLiteLoose is SQLite with foreign keys off, on one connection (the
// pragma is per connection): for tests whose rows stand alone, without
// the users, agents or orders they would point at.
func SQLiteLoose(t *testing.T) *models.Store {
	t.Helper()
	s := SQLite(t)
	sqlDB, err := s.DB.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1)
	if err := s.DB.Exec("PRAGMA foreign_keys = OFF").Error; err != nil {
		t.Fatal(err)
	}
	return s
}
