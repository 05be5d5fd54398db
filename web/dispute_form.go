package web

import (
	"strconv"
	"strings"
)

// The dispute forms: a party's statement (the buyer opening a dispute on
// the lease page, the provider answering it), and the arbiter's resolve
// and suspend forms on the dispute page. Their texts' rules (required,
// length) are the broker's, shared with the API; its errors name the same
// fields ("statement", "note", "reason").

// StatementForm is a party's statement on a dispute, kept as typed.
type StatementForm struct {
	Form
	Statement string
}

// Bind keeps the statement as typed.
func (f *StatementForm) Bind(get func(field string) string) { f.bind(get, "statement") }

// Validate reads the statement; the broker checks it.
func (f *StatementForm) Validate() error {
	f.Statement = f.Value("statement")
	return f.invalid()
}

// ResolveForm is the arbiter's decision: the buyer's share of the frozen
// escrow in basis points, and a note recorded with it on chain.
type ResolveForm struct {
	Form
	BuyerBps int64
	Note     string
}

// Bind keeps the share and the note as typed.
func (f *ResolveForm) Bind(get func(field string) string) { f.bind(get, "buyer_bps", "note") }

// Validate reads the share as a whole number. Its range is the broker's
// to check, so 10001 and -1 get the one message the API gives too.
func (f *ResolveForm) Validate() error {
	f.Note = f.Value("note")
	s := strings.TrimSpace(f.Value("buyer_bps"))
	n, err := strconv.ParseInt(s, 10, 64)
	if s == "" || err != nil {
		f.Fail("buyer_bps", "Enter the buyer's share as a whole number of basis points, 0 to 10000.")
		n = 0
	}
	f.BuyerBps = n
	return f.invalid()
}

// SuspendForm is the reason an arbiter suspends a provider for, which the
// provider is shown.
type SuspendForm struct {
	Form
	Reason string
}

// Bind keeps the reason as typed.
func (f *SuspendForm) Bind(get func(field string) string) { f.bind(get, "reason") }

// Validate reads the reason; the broker checks it (required to suspend).
func (f *SuspendForm) Validate() error {
	f.Reason = f.Value("reason")
	return f.invalid()
}
