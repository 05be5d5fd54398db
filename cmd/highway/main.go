// Command highway is the marketplace: web pages, JSON API and, in dev mode,
// everything needed to try Highway on one machine.
//
//	highway serve          run the marketplace (flags or HIGHWAY_* env)
//	highway migrate        apply database migrations and exit
//	highway admin create   create or promote an administrator
//	highway dev            run on embedded defaults under ./.highway/
//	highway offers|rent|leases|logs|extend|close|wallet   the buyer's CLI (cli.go)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `Highway: a GPU compute marketplace.

Usage:
  highway <command> [flags]

Commands:
  serve          run the marketplace
  migrate        apply database migrations and exit
  admin create   create an administrator (or promote an existing user)
  dev            run everything on embedded defaults under ./.highway/
  version        print the version

` + cliUsage + `
Run "highway <command> --help" for a command's flags. Every flag can also be
set through the HIGHWAY_* environment variable named in its help.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "highway:", err)
			os.Exit(exitCode(err))
		}
	}
}

// run dispatches a command line. It returns flag.ErrHelp after printing
// help, so help exits 0.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		m := NewMain(stdout, stderr)
		if err := m.ParseServeFlags(args[1:]); err != nil {
			return err
		}
		return m.RunUntil(ctx)
	case "migrate":
		return runMigrate(ctx, args[1:], stdout, stderr)
	case "admin":
		if len(args) < 2 || args[1] != "create" {
			fmt.Fprint(stderr, "Usage: highway admin create --email EMAIL [--password PASSWORD]\n")
			if len(args) >= 2 && (args[1] == "-h" || args[1] == "--help" || args[1] == "help") {
				return flag.ErrHelp
			}
			return errors.New(`unknown admin command: want "admin create"`)
		}
		return runAdminCreate(ctx, args[2:], stdout, stderr)
	case "dev":
		return runDev(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "highway", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return flag.ErrHelp
	default:
		if cmd, ok := cliCommands[args[0]]; ok {
			return cmd(ctx, args[1:], stdout, stderr)
		}
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
}
