package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Flags with HIGHWAY_* environment fallbacks, shared by every
// subcommand.

var errUsage = errors.New("usage error")

// flags wraps a FlagSet whose defaults come from the environment.
type flags struct {
	*flag.FlagSet
	e env
}

func newFlags(name, synopsis string, e env) *flags {
	fs := flag.NewFlagSet("provider-agent "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: provider-agent %s [flags]\n\n%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return &flags{FlagSet: fs, e: e}
}

func (f *flags) str(name, envName, def, help string) *string {
	if v := f.e.getenv(envName); v != "" {
		def = v
	}
	return f.String(name, def, fmt.Sprintf("%s (env %s)", help, envName))
}

func (f *flags) boolean(name, envName string, def bool, help string) *bool {
	if v, err := strconv.ParseBool(f.e.getenv(envName)); err == nil {
		def = v
	}
	return f.Bool(name, def, fmt.Sprintf("%s (env %s)", help, envName))
}

func (f *flags) duration(name, envName string, def time.Duration, help string) *time.Duration {
	if v, err := time.ParseDuration(f.e.getenv(envName)); err == nil {
		def = v
	}
	return f.Duration(name, def, fmt.Sprintf("%s (env %s)", help, envName))
}

func (f *flags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if f.NArg() > 0 {
		fmt.Fprintf(f.Output(), "unexpected arguments: %s\n", strings.Join(f.Args(), " "))
		return errUsage
	}
	return nil
}

func defaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/highway-agent"
	}
	if d, err := os.UserConfigDir(); err == nil {
		return d + "/highway-agent"
	}
	return ".highway-agent"
}
