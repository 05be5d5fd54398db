package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/highway-compute/highway/accounts"
)

// devAdminEmail is the seeded administrator of `highway dev`.
const devAdminEmail = "admin@highway.local"

// runDev runs the marketplace on embedded defaults: a SQLite file, a
// generated secret and a seeded admin, all under the data directory, so a
// newcomer needs nothing but Go.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	m := NewMain(stdout, stderr)
	fs := flag.NewFlagSet("highway dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", envOr("HIGHWAY_DATA_DIR", ".highway"), "where dev state lives (env HIGHWAY_DATA_DIR)")
	reset := fs.Bool("reset", false, "delete the data directory first and start afresh")
	fs.StringVar(&m.Config.Listen, "listen", envOr("HIGHWAY_LISTEN", "127.0.0.1:8080"), "address to listen on (env HIGHWAY_LISTEN)")
	commonFlags(fs, &m.Config)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: highway dev [flags]\n\nRuns the whole marketplace on embedded defaults under --data-dir. Flags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *reset {
		if err := os.RemoveAll(*dataDir); err != nil {
			return fmt.Errorf("reset %s: %w", *dataDir, err)
		}
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", *dataDir, err)
	}
	secret, err := readOrCreate(filepath.Join(*dataDir, "session-secret"), func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	})
	if err != nil {
		return err
	}
	password, err := readOrCreate(filepath.Join(*dataDir, "dev-admin-password"), randomPassword)
	if err != nil {
		return err
	}
	m.Config.SessionSecret = secret
	m.Config.Database = filepath.Join(*dataDir, "highway.db")
	m.Config.DevMode = true
	if err := m.Open(ctx); err != nil {
		return devHint(err, *dataDir)
	}
	if _, err := accounts.New(m.Store, m.Accounts).EnsureAdmin(ctx, devAdminEmail, password); err != nil {
		_ = m.Close()
		return devHint(err, *dataDir)
	}
	fmt.Fprintf(stdout, `
  Highway is running (dev mode)

    URL:    %s
    Admin:  %s
    Pass:   %s
    Data:   %s/  (highway dev --reset starts afresh)

  Press Ctrl-C to stop.

`, m.URL(), devAdminEmail, password, *dataDir)
	var serveErr error
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "\n  Stopping Highway…")
	case serveErr = <-m.serveErr:
	}
	return errors.Join(serveErr, m.Close())
}

// readOrCreate returns the trimmed content of path, creating it (0600)
// with gen() when missing.
func readOrCreate(path string, gen func() string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("%s is empty: delete it (or run highway dev --reset)", path)
		}
		return v, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	v := gen()
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return v, nil
}

// devHint adds what to do to a dev start-up failure.
func devHint(err error, dataDir string) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "listen on"):
		return err
	case strings.Contains(msg, "database"), strings.Contains(msg, "migrate"):
		return fmt.Errorf("%w\nThe dev state in %s/ looks damaged: run `highway dev --reset` (or `make dev ARGS=--reset`) to start afresh", err, dataDir)
	default:
		return err
	}
}
