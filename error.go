// Package highway holds the domain vocabulary shared by every part of the
// marketplace: the error type with its codes. It imports only the standard
// library so that pure cores (market/, poc/) may use it too.
package highway

import (
	"errors"
	"fmt"
)

// Error codes. They are part of the public API contract (docs/api.md):
// clients switch on them, so never rename one.
const (
	EINVALID           = "invalid"
	EUNAUTHORIZED      = "unauthorized"
	EFORBIDDEN         = "forbidden"
	ENOTFOUND          = "not_found"
	ECONFLICT          = "conflict"
	EINSUFFICIENTFUNDS = "insufficient_funds"
	ENOCAPACITY        = "no_capacity"
	ERATELIMITED       = "rate_limited"
	EINTERNAL          = "internal"
)

// Error is the one error type that crosses package boundaries. Message is
// safe to show to a user; Field names the offending input, if any. Anything
// that is not an *Error is treated as internal and never shown.
type Error struct {
	Code    string
	Message string
	Field   string
	// RetryAfter is the number of seconds to wait, for ERATELIMITED.
	RetryAfter int
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("highway error: code=%s field=%s message=%s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("highway error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the code and a formatted, user-safe message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an EINVALID error that names the offending field, so a
// form can show the message next to it and the API can report `field`.
func FieldError(field, message string) *Error {
	return &Error{Code: EINVALID, Field: field, Message: message}
}

// ErrorCode returns the code of err, EINTERNAL when err is not an *Error,
// and "" when err is nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the user-safe message of err. Internal errors never
// leak their text: users see "internal error" and the details go to the log.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "internal error"
	}
}

// ErrorRetryAfter returns the seconds to wait carried by a rate-limit
// error, or 0.
func ErrorRetryAfter(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// ErrorField returns the field named by err, or "".
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
