package web

import (
	"net/url"
	"strings"
	"testing"

	"github.com/highway-compute/highway"
)

// The forms' Validate: bad input gets a clear message beside the field
// the API names (and the first one comes back as EINVALID for the
// handler), good input comes back as typed values.

// wantRefused checks that err is EINVALID and that field carries a
// message containing msg.
func wantRefused(t *testing.T, f *Form, err error, field, msg string) {
	t.Helper()
	if highway.ErrorCode(err) != highway.EINVALID {
		t.Fatalf("err = %v, want invalid", err)
	}
	if got := f.Err(field); !strings.Contains(got, msg) {
		t.Fatalf("error beside %s = %q, want %q (all: %v, over the form: %q)", field, got, msg, f.Errors, f.Error)
	}
}

// posted is a getter over form values, as a request's PostForm is.
func posted(kv ...string) func(string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Get
}

func TestFormFail(t *testing.T) {
	var f Form
	if f.invalid() != nil {
		t.Fatal("an untouched form is invalid")
	}
	f.Fail("count", "first")
	f.Fail("count", "second")
	f.Fail("", "over the form")
	f.Fail("", "again")
	if f.Err("count") != "first" || f.Error != "over the form" {
		t.Fatalf("messages: %v %q", f.Errors, f.Error)
	}
	if err := f.invalid(); highway.ErrorField(err) != "count" || highway.ErrorMessage(err) != "first" {
		t.Fatalf("invalid() = %v", err)
	}
	f.Default("model", "H100")
	f.Default("model", "A100")
	if f.Value("model") != "H100" {
		t.Fatalf("Default overrode a value: %q", f.Value("model"))
	}
}
