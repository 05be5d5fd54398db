package web

import "github.com/highway-compute/highway"

// WithdrawForm is the wallet's withdraw form: the address and the amount
// in HWY as typed, and the amount Validate reads (the API takes uhwy).
// The address is the chain's to check; its error names "to".
type WithdrawForm struct {
	Form
	To     string
	Amount highway.Amount
}

// Bind keeps the address and the amount without surrounding spaces, as
// they are sent.
func (f *WithdrawForm) Bind(get func(field string) string) { f.bind(trimmed(get), "to", "amount") }

// Validate reads the amount: HWY, above 0.
func (f *WithdrawForm) Validate() error {
	f.To = f.Value("to")
	f.Amount = f.hwy("amount", "an amount", "2.5", false)
	return f.invalid()
}
