package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. Every rejection by Verifier, the Decode functions and
// CheckContinuity wraps exactly one of these, so the server can switch with
// errors.Is and Describe can map it to a status and a stable reason string.
var (
	// ErrMalformed: the request or body does not parse (bad JSON, bad header
	// encoding, trailing data).
	ErrMalformed = errors.New("malformed request")
	// ErrInvalid: the body parses but a field is out of range; the *Error
	// names the field.
	ErrInvalid = errors.New("invalid field")
	// ErrTooLarge: the body exceeds the size limit.
	ErrTooLarge = errors.New("request body too large")
	// ErrMissingAuth: one of the signature headers is absent.
	ErrMissingAuth = errors.New("missing signature headers")
	// ErrBadSignature: the signature does not verify under the agent's key.
	ErrBadSignature = errors.New("bad signature")
	// ErrStaleTimestamp: the signed timestamp is further from the server's
	// clock than the allowed skew.
	ErrStaleTimestamp = errors.New("timestamp outside allowed clock skew")
	// ErrReplay: the nonce was already used inside the skew window.
	ErrReplay = errors.New("replayed request")
	// ErrUnknownAgent: no agent with that id.
	ErrUnknownAgent = errors.New("unknown agent")
	// ErrRevokedAgent: the agent existed but its key was revoked.
	ErrRevokedAgent = errors.New("agent revoked")
	// ErrAgentMismatch: the body names another agent than the signer.
	ErrAgentMismatch = errors.New("body agent_id does not match the signing agent")
	// ErrGPUChanged: a GPU index reports another UUID than before (hardware
	// swapped under a running agent, or a forged report).
	ErrGPUChanged = errors.New("GPU identity changed between heartbeats")
	// ErrStaleSeq: the heartbeat sequence number did not increase.
	ErrStaleSeq = errors.New("heartbeat sequence did not increase")
	// ErrBusy: the replay cache is full; the server cannot safely accept
	// more signed requests right now.
	ErrBusy = errors.New("server busy: replay cache full")
)

// Error is a rejection with the field it concerns. It wraps one sentinel.
type Error struct {
	Kind  error  // one of the sentinels above
	Field string // JSON path of the offending field, or the header name
	Msg   string // detail, safe to show to the agent's operator
}

// Error implements error.
func (e *Error) Error() string {
	s := e.Kind.Error()
	if e.Field != "" {
		s += ": " + e.Field
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// Unwrap returns the sentinel, for errors.Is.
func (e *Error) Unwrap() error { return e.Kind }

func errf(kind error, field, format string, args ...any) *Error {
	return &Error{Kind: kind, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// fieldErr is the common case: an out-of-range field.
func fieldErr(field, format string, args ...any) *Error {
	return errf(ErrInvalid, field, format, args...)
}

type errorInfo struct {
	status int
	code   string // public API code (API.md)
	reason string
}

// errorTable maps each sentinel to its HTTP status, public code and reason.
// 401 for "we cannot tell who you are or that it is really you now",
// 403 for "we know you and the answer is no", 409 for state conflicts.
var errorTable = []struct {
	err  error
	info errorInfo
}{
	{ErrMalformed, errorInfo{http.StatusBadRequest, "invalid", "malformed"}},
	{ErrInvalid, errorInfo{http.StatusBadRequest, "invalid", "invalid_field"}},
	{ErrTooLarge, errorInfo{http.StatusRequestEntityTooLarge, "invalid", "too_large"}},
	{ErrMissingAuth, errorInfo{http.StatusUnauthorized, "unauthorized", "missing_auth"}},
	{ErrBadSignature, errorInfo{http.StatusUnauthorized, "unauthorized", "bad_signature"}},
	{ErrStaleTimestamp, errorInfo{http.StatusUnauthorized, "unauthorized", "stale_timestamp"}},
	{ErrReplay, errorInfo{http.StatusUnauthorized, "unauthorized", "replay"}},
	{ErrUnknownAgent, errorInfo{http.StatusUnauthorized, "unauthorized", "unknown_agent"}},
	{ErrRevokedAgent, errorInfo{http.StatusForbidden, "forbidden", "revoked_agent"}},
	{ErrAgentMismatch, errorInfo{http.StatusForbidden, "forbidden", "agent_mismatch"}},
	{ErrGPUChanged, errorInfo{http.StatusConflict, "conflict", "gpu_changed"}},
	{ErrStaleSeq, errorInfo{http.StatusConflict, "conflict", "stale_seq"}},
	{ErrBusy, errorInfo{http.StatusTooManyRequests, "rate_limited", "busy"}},
}

// Describe maps an error to the HTTP status and JSON body the server should
// answer with. Errors that wrap none of this package's sentinels are
// internal: 500 with a generic message, so internals never leak to agents.
func Describe(err error) (int, ErrorBody) {
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			body := ErrorBody{Error: ErrorDetail{Code: e.info.code, Reason: e.info.reason, Message: err.Error()}}
			var pe *Error
			if errors.As(err, &pe) {
				body.Error.Field = pe.Field
			}
			return e.info.status, body
		}
	}
	return http.StatusInternalServerError, ErrorBody{Error: ErrorDetail{Code: "internal", Message: "internal error"}}
}

// WriteError writes Describe(err) to w as JSON. Handlers that use gin can
// call Describe and c.JSON instead.
func WriteError(w http.ResponseWriter, err error) {
	status, body := Describe(err)
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
