package web

import (
	"strconv"
	"strings"
	"time"

	"github.com/highway-compute/highway"
)

// Page forms that take input are typed view-models, one beside each
// resource's view (OrderForm, WithdrawForm, PriceForm, the dispute forms,
// APIKeyForm, SignupForm, LoginForm). Each has the same two steps:
//
//   - Bind keeps what the person typed, to show it again;
//   - Validate reads the typed values from it (whole numbers, HWY amounts,
//     times) and puts a message beside each field it cannot read.
//
// Fields are named as the API names them, so an error from the broker,
// which names the API's field, lands beside the same input. The rules an
// order or a dispute obeys stay in the broker (and accounts), shared with
// the API so that a page and a script never disagree; Validate checks what
// only a form has: text to be read as a value. Bind takes a getter, not a
// request, so this package stays free of HTTP.

// Form is a form's render side: the values as typed and the messages, by
// field, that the templ views show. The typed forms embed it.
type Form struct {
	Values map[string]string
	Errors map[string]string
	// Error is a message for the whole form (e.g. rate limited).
	Error string
	// first is the first refusal, which Validate returns: the same one
	// whatever order the map keeps the messages in.
	first *highway.Error
}

// NewForm returns an empty form.
func NewForm() *Form {
	return &Form{Values: map[string]string{}, Errors: map[string]string{}}
}

// Value returns the submitted value of field.
func (f *Form) Value(field string) string {
	if f == nil {
		return ""
	}
	return f.Values[field]
}

// Checked reports whether a checkbox field was submitted on.
func (f *Form) Checked(field string) bool {
	v := f.Value(field)
	return v == "on" || v == "true" || v == "1"
}

// Err returns the error message for field.
func (f *Form) Err(field string) string {
	if f == nil {
		return ""
	}
	return f.Errors[field]
}

// FieldClass marks a field wrapper that has an error.
func (f *Form) FieldClass(field string) string {
	if f.Err(field) != "" {
		return "field has-error"
	}
	return "field"
}

// fieldMessages is what fieldError needs of a form: the message beside a
// field. Every typed form has it through its Form.
type fieldMessages interface{ Err(field string) string }

// Set stores the value a field shows.
func (f *Form) Set(field, value string) {
	if f.Values == nil {
		f.Values = map[string]string{}
	}
	f.Values[field] = value
}

// Default sets field when nothing was typed in it: a choice the page
// suggests, never one that overrides the person's.
func (f *Form) Default(field, value string) {
	if f.Value(field) == "" {
		f.Set(field, value)
	}
}

// Fail puts msg beside field, or over the form when field is "". Each
// keeps its first message: the first thing found wrong is the one to fix.
func (f *Form) Fail(field, msg string) {
	if f.first == nil {
		f.first = highway.FieldError(field, msg)
	}
	if field == "" {
		if f.Error == "" {
			f.Error = msg
		}
		return
	}
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	if _, ok := f.Errors[field]; !ok {
		f.Errors[field] = msg
	}
}

// bind stores each field as get returns it.
func (f *Form) bind(get func(field string) string, fields ...string) {
	for _, k := range fields {
		f.Set(k, get(k))
	}
}

// trimmed is get without the spaces around what was typed, for fields
// whose value is shown again as it will be used.
func trimmed(get func(string) string) func(string) string {
	return func(field string) string { return strings.TrimSpace(get(field)) }
}

// invalid is what Validate returns: nil when nothing was refused, else
// the first refusal (EINVALID, naming its field), so a handler refuses bad
// input on the path the broker's errors take. Every message stays on the
// form, beside its field.
func (f *Form) invalid() error {
	if f.first == nil {
		return nil
	}
	return f.first
}

// hwy reads money typed in HWY in field (highway.ParseHWY: up to six
// decimals, never rounded); noun names it in the messages ("a price", "an
// amount"), example shows the format. Zero is refused unless zeroOK. Every
// form that takes money reads it here, so they agree.
func (f *Form) hwy(field, noun, example string, zeroOK bool) highway.Amount {
	v, ok := highway.ParseHWY(strings.TrimSpace(f.Value(field)))
	switch {
	case !ok:
		f.Fail(field, "Enter "+noun+" in HWY with at most 6 decimals, e.g. "+example+".")
	case v == 0 && !zeroOK:
		_, bare, _ := strings.Cut(noun, " ")
		f.Fail(field, "The "+bare+" must be above 0.")
	}
	return v
}

// wholeNumber reads an optional whole number in field (empty is 0).
func (f *Form) wholeNumber(field string) int64 {
	s := strings.TrimSpace(f.Value(field))
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		f.Fail(field, "Enter a whole number.")
		return 0
	}
	return n
}

// utcTime reads a datetime-local value (taken as UTC, as the label says)
// or an RFC 3339 time; msg is the message when it is neither.
func (f *Form) utcTime(field, msg string) time.Time {
	s := strings.TrimSpace(f.Value(field))
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC()
		}
	}
	f.Fail(field, msg)
	return time.Time{}
}
