package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/highway-compute/highway"
)

// The buyer's CLI: the JSON API (docs/api.md) from a terminal, as renters
// of Vast and Akash live in theirs. Tables for people, --json for scripts
// (the API's own answer, unchanged). It authenticates with an API key
// from the Account page, in HIGHWAY_API_KEY, and talks to --url
// (HIGHWAY_URL, default the dev marketplace). Prices are typed and shown
// in HWY; the API carries uhwy.

const cliUsage = `Buyer commands (HIGHWAY_API_KEY holds an API key from the Account page):
  offers         list live offers (--model, --count, --max-price, --region, --sort …)
  rent           place an order and wait for its lease
  leases         list your leases
  logs LEASE     print a lease's workload output (-f follows it)
  extend LEASE   add hours to a running lease (--hours)
  close LEASE    close a lease; unearned escrow comes back
  shell LEASE    an interactive terminal into the lease's running workload
  wallet         your wallet's address and balance
Each takes --url (HIGHWAY_URL) and --json.
`

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitCode is the process status for an error run returned.
func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// cli is one command's connection to the marketplace.
type cli struct {
	ctx context.Context
	// idempotency keys an order placement: a placement retried after a
	// lost answer (below) is the same order, not a second one.
	idempotency string
	base        string
	key         string
	json        bool
	stdout      io.Writer
	http        *http.Client
}

// cliFlags is a command's flag set with the shared --url and --json.
func cliFlags(name string, stderr io.Writer) (*flag.FlagSet, *string, *bool) {
	fs := flag.NewFlagSet("highway "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", envOr("HIGHWAY_URL", "http://127.0.0.1:8080"), "the marketplace (env HIGHWAY_URL)")
	asJSON := fs.Bool("json", false, "print the API's JSON answer instead of a table")
	return fs, base, asJSON
}

// parseCLI parses a command's flags and positional arguments (flags may
// come after them: "logs LEASE -f").
func parseCLI(fs *flag.FlagSet, args []string, positional int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != positional {
		if positional == 0 {
			return nil, usageError{fmt.Sprintf("%s takes no arguments, got %q", fs.Name(), strings.Join(pos, " "))}
		}
		return nil, usageError{fmt.Sprintf("%s needs a lease id (see highway leases)", fs.Name())}
	}
	return pos, nil
}

func newCLI(ctx context.Context, base string, asJSON bool, stdout io.Writer) (*cli, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Sprintf("--url %q: want the marketplace's http(s) address, e.g. http://127.0.0.1:8080", base)}
	}
	return &cli{ctx: ctx, base: strings.TrimRight(base, "/"), key: os.Getenv("HIGHWAY_API_KEY"), json: asJSON, stdout: stdout,
		http: &http.Client{Timeout: 90 * time.Second}}, nil
}

// apiError is the API's error answer, with what to do about it.
type apiError struct {
	status int
	Code   string `json:"code"`
	Field  string `json:"field"`
	Msg    string `json:"message"`
	hint   string
}

// flagOf names the flag that sets an API field.
var flagOf = map[string]string{"max_price_per_gpu_hour": "max-price", "max_price": "max-price", "offer_id": "offer", "workload": "command",
	"min_vram_gib": "min-vram-gib", "max_rtt_ms": "max-rtt-ms", "min_reliability_bps": "min-reliability-bps", "expires_at": "wait"}

func (e *apiError) Error() string {
	msg := e.Msg
	if e.Field != "" {
		name, ok := flagOf[e.Field]
		if !ok {
			name = strings.ReplaceAll(e.Field, "_", "-")
		}
		msg += " (--" + name + ")"
	}
	if e.hint != "" {
		msg += "\n" + e.hint
	}
	return msg
}

// call sends one API request and decodes the answer into out; raw gets
// the answer's bytes (for --json).
func (c *cli) call(method, path string, q url.Values, body any, out any) (raw []byte, err error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + "/api/v1" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(c.ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.idempotency != "" && method == http.MethodPost && path == "/orders" {
		req.Header.Set("Idempotency-Key", c.idempotency)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if c.ctx.Err() != nil {
			return nil, c.ctx.Err()
		}
		return nil, fmt.Errorf("cannot reach the marketplace at %s: %w\nStart it (make dev) or point --url / HIGHWAY_URL at it", c.base, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err = io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error apiError `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error.Msg == "" {
			return nil, fmt.Errorf("%s %s: %s from %s", method, path, resp.Status, c.base)
		}
		e.Error.status = resp.StatusCode
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			e.Error.hint = "Create an API key on the Account page (" + c.base + "/account) and export HIGHWAY_API_KEY=<key>."
			if c.key == "" {
				e.Error.Msg = "No API key: HIGHWAY_API_KEY is not set."
			}
		case http.StatusPaymentRequired:
			e.Error.hint = "Fund your wallet: highway wallet shows its address."
		case http.StatusNotFound:
			if strings.HasPrefix(path, "/leases/") {
				e.Error.hint = "highway leases lists yours."
			}
		}
		return nil, &e.Error
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
		}
	}
	return raw, nil
}

// show GETs path into out; with --json it prints the answer itself and
// reports that the command is done (as it is on an error).
func (c *cli) show(path string, q url.Values, out any) (done bool, err error) {
	raw, err := c.call(http.MethodGet, path, q, nil, out)
	if err != nil {
		return true, err
	}
	if c.json {
		return true, c.emit(raw)
	}
	return false, nil
}

// emit prints an API answer as JSON for --json.
func (c *cli) emit(raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := c.stdout.Write(buf.Bytes())
	return err
}

func (c *cli) table(header string, rows [][]string) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// hwy renders a uhwy string as HWY.
func hwy(uhwy string) string {
	if uhwy == "" {
		return "—"
	}
	return highway.FormatHWY(uhwy)
}

// priceFlag reads a price typed in HWY into uhwy.
func priceFlag(name, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	a, ok := highway.ParseHWY(v)
	if !ok {
		return "", usageError{fmt.Sprintf("--%s %q: an amount of HWY per GPU-hour, e.g. 2.49", name, v)}
	}
	return a.String(), nil
}

// cliCommands are the buyer's commands by name.
var cliCommands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"offers": cliOffers, "rent": cliRent, "leases": cliLeases, "logs": cliLogs,
	"extend": cliLeaseAction("extend"), "close": cliLeaseAction("close"), "wallet": cliWallet, "shell": cliShell,
}
