package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
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

type cliOffer struct {
	ID             string           `json:"id"`
	Model          string           `json:"model"`
	VRAMGiB        int64            `json:"vram_gib"`
	GPUsFree       int64            `json:"gpus_free"`
	GPUsTotal      int64            `json:"gpus_total"`
	Region         string           `json:"region"`
	RTTms          map[string]int64 `json:"rtt_ms"`
	ReliabilityBps int64            `json:"reliability_bps"`
	Price          string           `json:"price_per_gpu_hour"`
	Simulated      bool             `json:"simulated"`
}

func cliOffers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, base, asJSON := cliFlags("offers", stderr)
	model := fs.String("model", "", "GPU model, e.g. H100")
	count := fs.Int("count", 0, "at least this many free GPUs on one machine")
	maxPrice := fs.String("max-price", "", "highest price per GPU-hour, in HWY")
	region := fs.String("region", "", "your region: RTTs are measured to it")
	maxRTT := fs.Int("max-rtt-ms", 0, "highest RTT to --region, in ms")
	minVRAM := fs.Int("min-vram-gib", 0, "least VRAM per GPU, in GiB")
	minRel := fs.Int("min-reliability-bps", 0, "least reliability, in basis points (9900 = 99 %)")
	sortBy := fs.String("sort", "", "price (default), rtt or reliability")
	limit := fs.Int("limit", 20, "how many offers")
	if _, err := parseCLI(fs, args, 0); err != nil {
		return err
	}
	price, err := priceFlag("max-price", *maxPrice)
	if err != nil {
		return err
	}
	c, err := newCLI(ctx, *base, *asJSON, stdout)
	if err != nil {
		return err
	}
	q := url.Values{}
	set := func(k, v string) {
		if v != "" && v != "0" {
			q.Set(k, v)
		}
	}
	set("model", *model)
	set("count", strconv.Itoa(*count))
	set("max_price", price)
	set("region", *region)
	set("max_rtt_ms", strconv.Itoa(*maxRTT))
	set("min_vram_gib", strconv.Itoa(*minVRAM))
	set("min_reliability_bps", strconv.Itoa(*minRel))
	set("sort", *sortBy)
	set("limit", strconv.Itoa(*limit))
	var page struct {
		Offers []cliOffer `json:"offers"`
	}
	if done, err := c.show("/offers", q, &page); done {
		return err
	}
	if len(page.Offers) == 0 {
		_, err := fmt.Fprintln(stdout, "No offers match. Loosen the filters, or place a resting order: highway rent --type gtc …")
		return err
	}
	rows := make([][]string, 0, len(page.Offers))
	for _, o := range page.Offers {
		rttRegion := *region
		if rttRegion == "" {
			rttRegion = o.Region
		}
		rtt := "—"
		if v, ok := o.RTTms[rttRegion]; ok {
			rtt = strconv.FormatInt(v, 10) + " ms"
		}
		model := o.Model
		if o.Simulated {
			model += " (simulated)"
		}
		rows = append(rows, []string{o.ID, model, fmt.Sprintf("%d/%d", o.GPUsFree, o.GPUsTotal), strconv.FormatInt(o.VRAMGiB, 10) + " GiB",
			hwy(o.Price), o.Region, rtt, fmt.Sprintf("%d.%02d %%", o.ReliabilityBps/100, o.ReliabilityBps%100)})
	}
	return c.table("OFFER\tMODEL\tFREE\tVRAM\tHWY/GPU-H\tREGION\tRTT\tRELIABILITY", rows)
}

type cliOrder struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	LeaseID string `json:"lease_id"`
	Failure string `json:"failure"`
	Model   string `json:"model"`
	Count   int64  `json:"count"`
	Price   string `json:"price_per_gpu_hour"`
}

func cliRent(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, base, asJSON := cliFlags("rent", stderr)
	typ := fs.String("type", "fok", "fok (match now or fail), gtc (rest until matched or --expires), rent_now (--offer at its price)")
	offer := fs.String("offer", "", "rent this offer (from highway offers)")
	model := fs.String("model", "", "GPU model, e.g. H100")
	count := fs.Int64("count", 1, "GPUs, on one machine")
	maxPrice := fs.String("max-price", "", "highest price per GPU-hour, in HWY (not needed with --type rent_now)")
	hours := fs.Int64("hours", 1, "how long, in hours (extend later with highway extend)")
	region := fs.String("region", "", "your region")
	maxRTT := fs.Int64("max-rtt-ms", 0, "highest RTT to --region, in ms")
	minVRAM := fs.Int64("min-vram-gib", 0, "least VRAM per GPU, in GiB")
	command := fs.String("command", "", "the workload, run with sh -c")
	image := fs.String("image", "", "the workload as a container image (instead of --command)")
	wait := fs.Duration("wait", 2*time.Minute, "how long to wait for the lease; 0 returns once the order is placed")
	if _, err := parseCLI(fs, args, 0); err != nil {
		return err
	}
	if (*command == "") == (*image == "") {
		return usageError{"give the workload: --command 'python train.py' or --image ghcr.io/you/trainer:1"}
	}
	price, err := priceFlag("max-price", *maxPrice)
	if err != nil {
		return err
	}
	c, err := newCLI(ctx, *base, *asJSON, stdout)
	if err != nil {
		return err
	}
	body := map[string]any{"type": *typ, "offer_id": *offer, "model": *model, "count": *count, "max_price_per_gpu_hour": price,
		"hours": *hours, "region": *region, "max_rtt_ms": *maxRTT, "min_vram_gib": *minVRAM,
		"workload": map[string]any{"command": *command, "image": *image}}
	var placed struct {
		Order cliOrder `json:"order"`
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	c.idempotency = hex.EncodeToString(id[:])
	raw, err := c.call(http.MethodPost, "/orders", nil, body, &placed)
	var apiErr *apiError
	if err != nil && !errors.As(err, &apiErr) && ctx.Err() == nil {
		// No answer (a timeout, a dropped connection): the order may or
		// may not be placed. The same key asks again and gets the order
		// it placed, if it did, rather than a second one.
		raw, err = c.call(http.MethodPost, "/orders", nil, body, &placed)
	}
	if err != nil {
		return err
	}
	o := placed.Order
	deadline := time.Now().Add(*wait)
	for *wait > 0 && (o.Status == "open" || o.Status == "matched") && *typ != "gtc" && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		var got struct {
			Order cliOrder `json:"order"`
		}
		if raw, err = c.call(http.MethodGet, "/orders/"+o.ID, nil, nil, &got); err != nil {
			return err
		}
		o = got.Order
	}
	if c.json {
		return c.emit(raw)
	}
	switch o.Status {
	case "leased":
		_, err = fmt.Fprintf(stdout, "Order %s leased: lease %s, %s × %d at %s HWY per GPU-hour.\nFollow it: highway logs -f %s\n",
			o.ID, o.LeaseID, o.Model, o.Count, hwy(o.Price), o.LeaseID)
		return err
	case "failed", "cancelled", "expired":
		return fmt.Errorf("order %s %s: %s", o.ID, o.Status, o.Failure)
	default:
		_, err = fmt.Fprintf(stdout, "Order %s is %s. Watch it: curl -H \"Authorization: Bearer $HIGHWAY_API_KEY\" %s/api/v1/orders/%s\n", o.ID, o.Status, c.base, o.ID)
		return err
	}
}

type cliLease struct {
	ID             string `json:"id"`
	Status         string `json:"status"`
	Model          string `json:"model"`
	GPUs           int64  `json:"gpus"`
	Price          string `json:"price_per_gpu_hour"`
	EndsAt         string `json:"ends_at"`
	WorkloadStatus string `json:"workload_status"`
	EpochsTotal    int64  `json:"epochs_total"`
	Escrow         struct {
		Remaining string `json:"remaining"`
		Paid      string `json:"paid"`
		Refunded  string `json:"refunded"`
	} `json:"escrow"`
}

func cliLeases(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, base, asJSON := cliFlags("leases", stderr)
	limit := fs.Int("limit", 20, "how many, newest first")
	if _, err := parseCLI(fs, args, 0); err != nil {
		return err
	}
	c, err := newCLI(ctx, *base, *asJSON, stdout)
	if err != nil {
		return err
	}
	var ls struct {
		Leases []cliLease `json:"leases"`
	}
	if done, err := c.show("/leases", url.Values{"limit": {strconv.Itoa(*limit)}}, &ls); done {
		return err
	}
	if len(ls.Leases) == 0 {
		_, err := fmt.Fprintln(stdout, "No leases yet. Find an offer: highway offers")
		return err
	}
	rows := make([][]string, 0, len(ls.Leases))
	for _, l := range ls.Leases {
		rows = append(rows, []string{l.ID, l.Status, l.WorkloadStatus, fmt.Sprintf("%s × %d", l.Model, l.GPUs), hwy(l.Price), l.EndsAt,
			hwy(l.Escrow.Remaining), hwy(l.Escrow.Paid)})
	}
	return c.table("LEASE\tSTATUS\tWORKLOAD\tGPUS\tHWY/GPU-H\tENDS\tESCROWED\tPAID", rows)
}

// logsPage is the most lines the API answers at once
// (handlers.apiLeaseLogs).
const logsPage = 1000

type cliLine struct {
	Seq    int64  `json:"seq"`
	Time   string `json:"time"`
	Stream string `json:"stream"`
	Text   string `json:"text"`
}

func cliLogs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, base, asJSON := cliFlags("logs", stderr)
	follow := fs.Bool("f", false, "follow: keep printing new lines until the lease ends")
	after := fs.Int64("after", 0, "only lines after this sequence number")
	pos, err := parseCLI(fs, args, 1)
	if err != nil {
		return err
	}
	c, err := newCLI(ctx, *base, *asJSON, stdout)
	if err != nil {
		return err
	}
	id, seq := url.PathEscape(pos[0]), *after
	enc := json.NewEncoder(stdout)
	lastLine := time.Now()
	for {
		var page struct {
			Lines []cliLine `json:"lines"`
		}
		if _, err := c.call(http.MethodGet, "/leases/"+id+"/logs", url.Values{"after": {strconv.FormatInt(seq, 10)}}, nil, &page); err != nil {
			return err
		}
		for _, l := range page.Lines {
			seq = max(seq, l.Seq)
			if c.json {
				if err := enc.Encode(l); err != nil {
					return err
				}
				continue
			}
			w := stdout
			if l.Stream == "stderr" {
				w = stderr
			}
			if _, err := fmt.Fprintln(w, l.Text); err != nil {
				return err
			}
		}
		if len(page.Lines) > 0 {
			lastLine = time.Now()
		}
		if len(page.Lines) >= logsPage {
			continue // a full page: there is more at once
		}
		if !*follow {
			return nil
		}
		var l struct {
			Lease cliLease `json:"lease"`
		}
		if _, err := c.call(http.MethodGet, "/leases/"+id, nil, nil, &l); err != nil {
			return err
		}
		ended := l.Lease.WorkloadStatus == "exited" || l.Lease.WorkloadStatus == "stopped" || l.Lease.WorkloadStatus == "failed"
		if !ended && l.Lease.Status == "closed" && time.Since(lastLine) > 30*time.Second {
			// Closed, but its agent never reported the stop (it is
			// offline): nothing more will come.
			fmt.Fprintf(stderr, "highway: lease %s is closed; its agent has not reported since\n", pos[0])
			return nil
		}
		switch {
		case ended:
			// The last lines come with the report that ended it; one more
			// read takes them.
			var last struct {
				Lines []cliLine `json:"lines"`
			}
			if _, err := c.call(http.MethodGet, "/leases/"+id+"/logs", url.Values{"after": {strconv.FormatInt(seq, 10)}}, nil, &last); err != nil {
				return err
			}
			if len(last.Lines) > 0 {
				continue
			}
			if !c.json {
				fmt.Fprintf(stderr, "highway: the workload %s; lease %s is %s\n", l.Lease.WorkloadStatus, pos[0], l.Lease.Status)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil // Ctrl-C ends following, not in error
		case <-time.After(time.Second):
		}
	}
}

func cliLeaseAction(name string) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs, base, asJSON := cliFlags(name, stderr)
		var hours *int64
		if name == "extend" {
			hours = fs.Int64("hours", 0, "hours to add (1 to 720)")
		}
		pos, err := parseCLI(fs, args, 1)
		if err != nil {
			return err
		}
		if hours != nil && *hours <= 0 {
			return usageError{"say how long: highway extend LEASE --hours 2"}
		}
		c, err := newCLI(ctx, *base, *asJSON, stdout)
		if err != nil {
			return err
		}
		var body any
		if hours != nil {
			body = map[string]int64{"hours": *hours}
		}
		var got struct {
			Lease cliLease `json:"lease"`
		}
		raw, err := c.call(http.MethodPost, "/leases/"+url.PathEscape(pos[0])+"/"+name, nil, body, &got)
		if err != nil {
			return err
		}
		if c.json {
			return c.emit(raw)
		}
		l := got.Lease
		if name == "extend" {
			_, err = fmt.Fprintf(stdout, "Lease %s extended: %d epochs, it now ends %s; %s HWY in escrow.\n", l.ID, l.EpochsTotal, l.EndsAt, hwy(l.Escrow.Remaining))
		} else {
			_, err = fmt.Fprintf(stdout, "Lease %s closed: %s HWY paid to the provider, %s HWY back to your wallet so far.\n", l.ID, hwy(l.Escrow.Paid), hwy(l.Escrow.Refunded))
		}
		return err
	}
}

func cliWallet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, base, asJSON := cliFlags("wallet", stderr)
	if _, err := parseCLI(fs, args, 0); err != nil {
		return err
	}
	c, err := newCLI(ctx, *base, *asJSON, stdout)
	if err != nil {
		return err
	}
	var w struct {
		Address  string `json:"address"`
		Balances []struct {
			Denom  string `json:"denom"`
			Amount string `json:"amount"`
		} `json:"balances"`
	}
	if done, err := c.show("/wallet", nil, &w); done {
		return err
	}
	fmt.Fprintf(stdout, "Address  %s\n", w.Address)
	for _, b := range w.Balances {
		if b.Denom == "uhwy" {
			fmt.Fprintf(stdout, "Balance  %s HWY\n", hwy(b.Amount))
		} else {
			fmt.Fprintf(stdout, "Balance  %s %s\n", b.Amount, b.Denom)
		}
	}
	return nil
}

// cliCommands are the buyer's commands by name.
var cliCommands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"offers": cliOffers, "rent": cliRent, "leases": cliLeases, "logs": cliLogs,
	"extend": cliLeaseAction("extend"), "close": cliLeaseAction("close"), "wallet": cliWallet,
}
