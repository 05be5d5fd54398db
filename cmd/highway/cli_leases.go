package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The buyer's lease and wallet commands (cli.go has the plumbing).

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
