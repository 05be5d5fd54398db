package web

import (
	"net/url"
	"testing"
	"time"

	"github.com/highway-compute/highway"
)

// goodOrder is a valid fill-or-kill order form, as posted.
func goodOrder() url.Values {
	return url.Values{"type": {"fok"}, "model": {"H100"}, "count": {"2"}, "max_price_per_gpu_hour": {" 2.49 "}, "region": {"eu"},
		"max_rtt_ms": {""}, "hours": {"3"}, "command": {"  echo hi  "}, "idempotency_key": {"form-k"}, "offer_id": {"o-1"}}
}

func TestOrderFormValidate(t *testing.T) {
	bad := []struct {
		name        string
		set         map[string]string
		field, want string
	}{
		{"count not a number", map[string]string{"count": "two"}, "count", "whole number"},
		{"negative count", map[string]string{"count": "-1"}, "count", "whole number"},
		{"rtt not a number", map[string]string{"max_rtt_ms": "1e3"}, "max_rtt_ms", "whole number"},
		{"hours not a number", map[string]string{"hours": "1.5"}, "hours", "whole number"},
		{"no price", map[string]string{"max_price_per_gpu_hour": "  "}, "max_price_per_gpu_hour", "in HWY"},
		{"seven decimals", map[string]string{"max_price_per_gpu_hour": "2.4900001"}, "max_price_per_gpu_hour", "at most 6 decimals"},
		{"price zero", map[string]string{"max_price_per_gpu_hour": "0"}, "max_price_per_gpu_hour", "above 0"},
		{"negative price", map[string]string{"max_price_per_gpu_hour": "-1"}, "max_price_per_gpu_hour", "at most 6 decimals"},
		{"rent now, bad price", map[string]string{"type": "rent_now", "max_price_per_gpu_hour": "abc"}, "max_price_per_gpu_hour", "in HWY"},
		{"gtc without deadline", map[string]string{"type": "gtc"}, "expires_at", "date and time (UTC)"},
		{"gtc, not a time", map[string]string{"type": "gtc", "expires_at": "tomorrow"}, "expires_at", "date and time (UTC)"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			v := goodOrder()
			for k, x := range tc.set {
				v.Set(k, x)
			}
			var f OrderForm
			f.Bind(v.Get)
			err := f.Validate()
			wantRefused(t, &f.Form, err, tc.field, tc.want)
			if highway.ErrorField(err) != tc.field {
				t.Errorf("returned error names %q, want %q", highway.ErrorField(err), tc.field)
			}
			// What was typed is shown again, unchanged.
			for k := range v {
				if f.Value(k) != v.Get(k) {
					t.Errorf("%s shown as %q, typed %q", k, f.Value(k), v.Get(k))
				}
			}
		})
	}

	t.Run("every unreadable field at once", func(t *testing.T) {
		v := goodOrder()
		v.Set("count", "x")
		v.Set("hours", "y")
		v.Set("max_price_per_gpu_hour", "z")
		var f OrderForm
		f.Bind(v.Get)
		err := f.Validate()
		for _, field := range []string{"count", "hours", "max_price_per_gpu_hour"} {
			if f.Err(field) == "" {
				t.Errorf("no message beside %s", field)
			}
		}
		// The first checked is the one returned.
		if highway.ErrorField(err) != "max_price_per_gpu_hour" {
			t.Errorf("returned error names %q", highway.ErrorField(err))
		}
	})

	good := []struct {
		name  string
		set   map[string]string
		check func(t *testing.T, f *OrderForm)
	}{
		{"fill-or-kill", nil, func(t *testing.T, f *OrderForm) {
			if f.Type != "fok" || f.Model != "H100" || f.Region != "eu" || f.Count != 2 || f.Hours != 3 || f.MaxRTTms != 0 ||
				f.MaxPrice != 2_490_000 || f.Command != "echo hi" || f.Image != "" || f.IdempotencyKey != "form-k" || !f.ExpiresAt.IsZero() {
				t.Errorf("typed = %+v", f)
			}
			if f.OfferID != "" {
				t.Errorf("a fill-or-kill order took the linked offer %q", f.OfferID)
			}
		}},
		{"rent now at the ask", map[string]string{"type": "rent_now", "max_price_per_gpu_hour": ""}, func(t *testing.T, f *OrderForm) {
			if f.OfferID != "o-1" || f.MaxPrice != 0 {
				t.Errorf("offer %q price %d", f.OfferID, f.MaxPrice)
			}
		}},
		{"rent now, zero is the ask", map[string]string{"type": "rent_now", "max_price_per_gpu_hour": "0"}, func(t *testing.T, f *OrderForm) {
			if f.MaxPrice != 0 {
				t.Errorf("price %d", f.MaxPrice)
			}
		}},
		{"an image", map[string]string{"command": "", "image": " ghcr.io/x/y:1 "}, func(t *testing.T, f *OrderForm) {
			if f.Command != "" || f.Image != "ghcr.io/x/y:1" {
				t.Errorf("command %q image %q", f.Command, f.Image)
			}
		}},
		{"rtt", map[string]string{"max_rtt_ms": " 40 "}, func(t *testing.T, f *OrderForm) {
			if f.MaxRTTms != 40 {
				t.Errorf("rtt %d", f.MaxRTTms)
			}
		}},
		{"gtc, datetime-local is UTC", map[string]string{"type": "gtc", "expires_at": "2030-01-02T03:04"}, func(t *testing.T, f *OrderForm) {
			if want := time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC); !f.ExpiresAt.Equal(want) || f.ExpiresAt.Location() != time.UTC {
				t.Errorf("expires %v", f.ExpiresAt)
			}
		}},
		{"gtc, RFC 3339", map[string]string{"type": "gtc", "expires_at": "2030-01-02T03:04:05+02:00"}, func(t *testing.T, f *OrderForm) {
			if want := time.Date(2030, 1, 2, 1, 4, 5, 0, time.UTC); !f.ExpiresAt.Equal(want) {
				t.Errorf("expires %v", f.ExpiresAt)
			}
		}},
		// Zero hours read fine: "at least 1" is the API's rule (orderRequest), shared with scripts.
		{"zero hours read", map[string]string{"hours": "0"}, func(t *testing.T, f *OrderForm) {
			if f.Hours != 0 {
				t.Errorf("hours %d", f.Hours)
			}
		}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			v := goodOrder()
			for k, x := range tc.set {
				v.Set(k, x)
			}
			var f OrderForm
			f.Bind(v.Get)
			if err := f.Validate(); err != nil {
				t.Fatalf("Validate = %v (%v)", err, f.Errors)
			}
			if len(f.Errors) != 0 || f.Error != "" {
				t.Fatalf("messages on a valid form: %v %q", f.Errors, f.Error)
			}
			tc.check(t, &f)
		})
	}
}

func TestOrderFormDefaultsAndEstimate(t *testing.T) {
	var f OrderForm
	f.Bind(posted("offer_id", "o-1"))
	f.Defaults()
	if f.Value("type") != "rent_now" || f.Value("count") != "1" || f.Value("hours") != "1" {
		t.Fatalf("defaults with an offer: %v", f.Values)
	}
	f = OrderForm{}
	f.Bind(posted("type", "gtc", "count", "4"))
	f.Defaults()
	if f.Value("type") != "gtc" || f.Value("count") != "4" {
		t.Fatalf("defaults override what was typed: %v", f.Values)
	}
	f = OrderForm{}
	f.Bind(posted())
	f.Defaults()
	if f.Value("type") != "fok" {
		t.Fatalf("default type %q", f.Value("type"))
	}

	f = OrderForm{}
	f.Bind(posted("max_price_per_gpu_hour", "1.5", "count", "", "hours", "3"))
	if p, n, h := f.Estimate(); p != 1_500_000 || n != 1 || h != 3 {
		t.Fatalf("estimate = %d %d %d", p, n, h)
	}
	f = OrderForm{}
	f.Bind(posted("max_price_per_gpu_hour", "lots", "count", "x", "hours", "y"))
	if p, n, h := f.Estimate(); p != 0 || n != 1 || h != 0 || len(f.Errors) != 0 {
		t.Fatalf("estimate of unreadable input = %d %d %d, messages %v", p, n, h, f.Errors)
	}
}

// TestOrderFormRegistryLogin: a login goes with an image only and needs
// both parts; the password is never kept for the page to show again,
// whether the form is refused or not.
func TestOrderFormRegistryLogin(t *testing.T) {
	for _, tc := range []struct {
		name, image, user, pass, field string
	}{
		{"with a command", "", "u", "p", "registry_username"},
		{"no username", "ghcr.io/a/b:1", "", "p", "registry_username"},
		{"no password", "ghcr.io/a/b:1", "u", "", "registry_password"},
		{"both", "ghcr.io/a/b:1", "u", "p", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := goodOrder()
			if tc.image != "" {
				v.Set("command", "")
				v.Set("image", tc.image)
			}
			v.Set("registry_username", tc.user)
			v.Set("registry_password", tc.pass)
			var f OrderForm
			f.Bind(v.Get)
			err := f.Validate()
			if highway.ErrorField(err) != tc.field {
				t.Fatalf("error %v on %q, want field %q", err, highway.ErrorField(err), tc.field)
			}
			if f.Value("registry_password") != "" {
				t.Fatal("the password is kept for the page")
			}
			if tc.field == "" && (f.RegistryUser != "u" || f.RegistryPassword != "p") {
				t.Fatalf("login %q/%q", f.RegistryUser, f.RegistryPassword)
			}
		})
	}
}

// TestProvingShareFormat: durations read plainly and the share never
// rounds down.
func TestProvingShareFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{15 * time.Second: "15 s", time.Minute: "1 min", 10 * time.Minute: "10 min",
		90 * time.Second: "90 s", 150 * time.Second: "2 min 30 s", 2*time.Hour + 5*time.Minute: "2 h 5 min"} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%s) = %q, want %q", d, got, want)
		}
	}
	for _, c := range []struct {
		part, whole time.Duration
		want        string
	}{{time.Minute, 10 * time.Minute, "10.0 %"}, {15 * time.Second, 10 * time.Minute, "2.5 %"}, {time.Second, 3 * time.Second, "33.4 %"}, {1, 0, "?"}} {
		if got := permille(c.part, c.whole); got != c.want {
			t.Errorf("permille(%s, %s) = %q, want %q", c.part, c.whole, got, c.want)
		}
	}
}
