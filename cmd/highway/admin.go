package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"math/big"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("highway migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("database", envOr("HIGHWAY_DATABASE", "highway.db"), "SQLite file path, or postgres://user@host/db (env HIGHWAY_DATABASE)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: highway migrate [flags]\n\nApplies pending database migrations and exits. Flags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	store, err := models.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx, nil); err != nil {
		return err
	}
	v, err := store.MigrationVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database at migration version %d\n", v)
	return nil
}

func runAdminCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("highway admin create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("database", envOr("HIGHWAY_DATABASE", "highway.db"), "SQLite file path, or postgres://user@host/db (env HIGHWAY_DATABASE)")
	email := fs.String("email", envOr("HIGHWAY_ADMIN_EMAIL", ""), "administrator's email (env HIGHWAY_ADMIN_EMAIL; required)")
	password := fs.String("password", envOr("HIGHWAY_ADMIN_PASSWORD", ""), "password; generated and printed when empty (env HIGHWAY_ADMIN_PASSWORD)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: highway admin create --email EMAIL [--password PASSWORD]\n\nCreates an administrator, or grants admin to an existing user and sets the password. Flags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *email == "" {
		fs.Usage()
		return fmt.Errorf("admin create: --email is required")
	}
	generated := false
	if *password == "" {
		*password = randomPassword()
		generated = true
	}
	store, err := models.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx, nil); err != nil {
		return err
	}
	u, err := accounts.New(store, accounts.Config{}).EnsureAdmin(ctx, *email, *password)
	if err != nil {
		return fmt.Errorf("admin create: %w", err)
	}
	fmt.Fprintf(stdout, "administrator %s ready\n", u.Email)
	if generated {
		fmt.Fprintf(stdout, "password: %s\n", *password)
	}
	return nil
}

// randomPassword returns 20 characters from an unambiguous alphabet
// (about 100 bits).
func randomPassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}
