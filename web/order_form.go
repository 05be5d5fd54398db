package web

import (
	"strconv"
	"strings"
	"time"

	"github.com/highway-compute/highway"
)

// OrderForm is the order form (/orders/new): what the person typed, and
// the order Validate reads from it. Its fields are named as the API's
// order body. The order's rules (known model, hours, capacity, funds) are
// the API's and the broker's; their errors name the same fields.
type OrderForm struct {
	Form
	Type  string
	Model string
	// OfferID is the offer a rent-now order takes; "" for other types
	// (the Rent link's offer only binds a rent-now order).
	OfferID  string
	Region   string
	Count    int64
	MaxRTTms int64
	Hours    int64
	// MaxPrice is the most per GPU-hour; 0 on a rent-now order means the
	// offer's ask.
	MaxPrice highway.Amount
	// ExpiresAt is a good-til-cancelled order's deadline (zero otherwise).
	ExpiresAt time.Time
	// Command and Image are the workload, without surrounding spaces.
	Command, Image string
	// RegistryUser and RegistryPassword are a login for a private image.
	// The password is never shown again: a form sent back with an error
	// asks for it anew (it would otherwise sit in the page's HTML).
	RegistryUser, RegistryPassword string
	// IdempotencyKey tags one rendering of the form, so a double submit
	// places one order.
	IdempotencyKey string
	// Interruptible: a bid for interruptible GPUs (cheaper, preemptible).
	Interruptible bool
}

// orderFields are the inputs the order form posts (and the query a link
// to it may prefill).
var orderFields = []string{"type", "offer_id", "model", "count", "max_price_per_gpu_hour", "region", "max_rtt_ms", "hours",
	"expires_at", "command", "image", "registry_username", "registry_password", "idempotency_key", "interruptible"}

// Bind keeps each input as typed: the page shows it again unchanged.
func (f *OrderForm) Bind(get func(field string) string) { f.bind(get, orderFields...) }

// Defaults fills what a fresh form suggests: rent the linked offer now,
// else fill-or-kill; one GPU for one hour.
func (f *OrderForm) Defaults() {
	if f.Value("type") == "" {
		f.Set("type", "fok")
		if f.Value("offer_id") != "" {
			f.Set("type", "rent_now")
		}
	}
	f.Default("count", "1")
	f.Default("hours", "1")
}

// Validate reads the order from what was typed. The price is in HWY, as
// people type money (the API takes uhwy); a rent-now order may leave it
// empty or 0 for the offer's ask.
func (f *OrderForm) Validate() error {
	f.Type, f.Model, f.Region = f.Value("type"), f.Value("model"), f.Value("region")
	f.IdempotencyKey = f.Value("idempotency_key")
	rentNow := f.Type == "rent_now"
	f.OfferID = ""
	if rentNow {
		f.OfferID = f.Value("offer_id")
	}
	f.Command, f.Image = strings.TrimSpace(f.Value("command")), strings.TrimSpace(f.Value("image"))
	f.RegistryUser, f.RegistryPassword = strings.TrimSpace(f.Value("registry_username")), f.Value("registry_password")
	f.Set("registry_password", "")
	switch {
	case f.RegistryUser == "" && f.RegistryPassword == "":
	case f.Image == "":
		f.Fail("registry_username", "A registry login is only for a container image.")
	case f.RegistryUser == "":
		f.Fail("registry_username", "Give the registry username with the password.")
	case f.RegistryPassword == "":
		f.Fail("registry_password", "Give the password or access token for this username.")
	}
	f.MaxPrice = 0
	switch {
	case strings.TrimSpace(f.Value("max_price_per_gpu_hour")) != "":
		f.MaxPrice = f.hwy("max_price_per_gpu_hour", "a price", "2.49", rentNow)
	case !rentNow:
		f.Fail("max_price_per_gpu_hour", "Give the most you will pay per GPU-hour, in HWY.")
	}
	f.Count = f.wholeNumber("count")
	f.MaxRTTms = f.wholeNumber("max_rtt_ms")
	f.Hours = f.wholeNumber("hours")
	f.Interruptible = f.Checked("interruptible")
	f.ExpiresAt = time.Time{}
	if f.Type == "gtc" {
		f.ExpiresAt = f.utcTime("expires_at", "Give the date and time (UTC) until which the order may wait.")
	}
	return f.invalid()
}

// Estimate is what the escrow estimate is computed from: the price, GPUs
// and hours as far as they read (0 where they do not, one GPU when none
// is given). It refuses nothing: the estimate is a preview, the order's
// own checks come on submit.
func (f *OrderForm) Estimate() (price highway.Amount, count, hours int64) {
	price, _ = highway.ParseHWY(strings.TrimSpace(f.Value("max_price_per_gpu_hour")))
	count, _ = strconv.ParseInt(f.Value("count"), 10, 64)
	if count == 0 {
		count = 1
	}
	hours, _ = strconv.ParseInt(f.Value("hours"), 10, 64)
	return price, count, hours
}
