package web

import "testing"

func TestResolveFormValidate(t *testing.T) {
	for _, tc := range []struct {
		bps  string
		ok   bool
		want int64
	}{
		{"abc", false, 0}, {"", false, 0}, {"  ", false, 0}, {"50.5", false, 0},
		{"7500", true, 7500}, {" 0 ", true, 0}, {"10000", true, 10000},
		// The range is the broker's: its message is the API's too.
		{"10001", true, 10001}, {"-1", true, -1},
	} {
		var f ResolveForm
		f.Bind(posted("buyer_bps", tc.bps, "note", " refund most "))
		err := f.Validate()
		if !tc.ok {
			wantRefused(t, &f.Form, err, "buyer_bps", "whole number of basis points")
			continue
		}
		if err != nil || f.BuyerBps != tc.want || f.Note != " refund most " {
			t.Errorf("bps %q: err %v, bps %d, note %q", tc.bps, err, f.BuyerBps, f.Note)
		}
	}
}

// The statement and the reason are read as typed; their rules are the
// broker's, so Validate refuses nothing.
func TestDisputeTextFormsValidate(t *testing.T) {
	var st StatementForm
	st.Bind(posted("statement", "  it never started "))
	if err := st.Validate(); err != nil || st.Statement != "  it never started " || st.Value("statement") != st.Statement {
		t.Errorf("statement: %v %q", err, st.Statement)
	}
	var su SuspendForm
	su.Bind(posted("reason", "missed proofs"))
	if err := su.Validate(); err != nil || su.Reason != "missed proofs" {
		t.Errorf("suspend: %v %q", err, su.Reason)
	}
}
