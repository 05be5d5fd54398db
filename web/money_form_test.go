package web

import (
	"strings"
	"testing"

	"github.com/highway-compute/highway"
)

// The withdraw amount and the provider's ask read HWY alike.
func TestMoneyFormsValidate(t *testing.T) {
	for _, tc := range []struct {
		typed, want string
		uhwy        highway.Amount
	}{
		{"abc", "at most 6 decimals, e.g. 2.5", 0},
		{"-1", "at most 6 decimals", 0},
		{"1.2345678", "at most 6 decimals", 0},
		{"", "at most 6 decimals", 0},
		{"0", "The amount must be above 0.", 0},
		{"0.000000", "The amount must be above 0.", 0},
		{" 2.5 ", "", 2_500_000},
		{"0.000001", "", 1},
	} {
		var w WithdrawForm
		w.Bind(posted("to", " hwy1dest ", "amount", tc.typed))
		err := w.Validate()
		if tc.want != "" {
			wantRefused(t, &w.Form, err, "amount", tc.want)
		} else if err != nil || w.Amount != tc.uhwy || w.To != "hwy1dest" {
			t.Errorf("withdraw %q: err %v, amount %d, to %q", tc.typed, err, w.Amount, w.To)
		}
		// Shown again as it will be sent: without the spaces.
		if w.Value("amount") != strings.TrimSpace(tc.typed) || w.Value("to") != "hwy1dest" {
			t.Errorf("withdraw %q shown as %q to %q", tc.typed, w.Value("amount"), w.Value("to"))
		}

		var p PriceForm
		p.Bind(posted("model", "H100", "price_per_gpu_hour", tc.typed))
		err = p.Validate()
		if want := strings.Replace(strings.Replace(tc.want, "amount", "price", 1), "2.5", "2.49", 1); want != "" {
			wantRefused(t, &p.Form, err, "price_per_gpu_hour", want)
		} else if err != nil || p.Price != tc.uhwy || p.Model != "H100" {
			t.Errorf("price %q: err %v, price %d, model %q", tc.typed, err, p.Price, p.Model)
		}
	}
}
