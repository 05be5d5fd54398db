package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The buyer's market commands: offers and rent (cli.go has the plumbing).

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
