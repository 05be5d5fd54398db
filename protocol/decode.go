package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxBody is the default limit on a request body: an 8-GPU heartbeat
// is about 5 KiB, a full log batch stays under it by construction.
const DefaultMaxBody = 256 << 10

// validator is implemented by every decodable message type.
type validator interface{ Validate() error }

// decode parses exactly one JSON value into v, rejecting oversize input and
// trailing data, then validates it. Unknown fields are ignored on purpose:
// a newer agent may send fields an older server does not know yet.
func decode(data []byte, v validator) error {
	if len(data) > DefaultMaxBody {
		return errf(ErrTooLarge, "", "%d bytes, limit %d", len(data), DefaultMaxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return errf(ErrMalformed, te.Field, "wrong JSON type: %s", te.Value)
		}
		return errf(ErrMalformed, "", "bad JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errf(ErrMalformed, "", "trailing data after the JSON value")
	}
	if err := v.Validate(); err != nil {
		return err
	}
	return nil
}

// DecodeHeartbeat parses and validates a heartbeat body. Any error wraps
// ErrTooLarge, ErrMalformed or ErrInvalid and names the field.
func DecodeHeartbeat(data []byte) (Heartbeat, error) {
	var h Heartbeat
	if len(data) <= DefaultMaxBody && fastHeartbeat(data, &h) {
		if err := h.Validate(); err != nil {
			return Heartbeat{}, err
		}
		return h, nil
	}
	h = Heartbeat{}
	if err := decode(data, &h); err != nil {
		return Heartbeat{}, err
	}
	return h, nil
}

// DecodeRegisterRequest parses and validates a registration.
func DecodeRegisterRequest(data []byte) (RegisterRequest, error) {
	var r RegisterRequest
	if err := decode(data, &r); err != nil {
		return RegisterRequest{}, err
	}
	return r, nil
}

// DecodeLogBatch parses and validates a log batch.
func DecodeLogBatch(data []byte) (LogBatch, error) {
	var b LogBatch
	if err := decode(data, &b); err != nil {
		return LogBatch{}, err
	}
	return b, nil
}

// DecodeVerificationResponse parses and validates an agent's verification proof.
func DecodeVerificationResponse(data []byte) (VerificationResponse, error) {
	var r VerificationResponse
	if err := decode(data, &r); err != nil {
		return VerificationResponse{}, err
	}
	return r, nil
}

// DecodeQuoteResponse parses and validates an agent's quote answer.
func DecodeQuoteResponse(data []byte) (QuoteResponse, error) {
	var r QuoteResponse
	if err := decode(data, &r); err != nil {
		return QuoteResponse{}, err
	}
	return r, nil
}

// Decode parses and validates any of this package's message types; the
// agent uses it for the server's responses.
func Decode[T any, PT interface {
	*T
	validator
}](data []byte) (T, error) {
	var v T
	if err := decode(data, PT(&v)); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// CheckContinuity compares a new heartbeat with the previous accepted one
// from the same agent, before anything is applied:
//   - the signer must be the agent the body names (ErrAgentMismatch is
//     checked by the caller against Verified.AgentID; here both beats must
//     name the same agent);
//   - within one boot (BootID), Seq must increase (ErrStaleSeq);
//   - a GPU index must keep its UUID (ErrGPUChanged). A machine whose
//     hardware really changed must re-enroll, so a listing never silently
//     swaps the GPU a buyer is paying for.
//
// A zero prev (first beat) always passes.
func CheckContinuity(prev, next *Heartbeat) error {
	if prev == nil || prev.AgentID == "" {
		return nil
	}
	if prev.AgentID != next.AgentID {
		return errf(ErrAgentMismatch, "agent_id", "previous beat came from %s", prev.AgentID)
	}
	if prev.BootID == next.BootID && next.Seq <= prev.Seq {
		return errf(ErrStaleSeq, "seq", "got %d after %d", next.Seq, prev.Seq)
	}
	before := make(map[int]string, len(prev.GPUs))
	for _, g := range prev.GPUs {
		before[g.Index] = g.UUID
	}
	for i, g := range next.GPUs {
		if u, ok := before[g.Index]; ok && u != g.UUID {
			return errf(ErrGPUChanged, fmt.Sprintf("gpus[%d].uuid", i), "index %d was %s", g.Index, u)
		}
	}
	return nil
}
