package protocol

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// DefaultMaxSkew is how far an agent's signed timestamp may be from the
// server's clock. NTP keeps real machines within a second; a minute absorbs
// a slow request and a sloppy clock without keeping nonces for long.
const DefaultMaxSkew = 60 * time.Second

// KeyStore finds an agent's public key. It returns an error wrapping
// ErrUnknownAgent when there is no such agent and ErrRevokedAgent when its
// key was revoked; any other error is treated as internal (500).
type KeyStore interface {
	AgentKey(ctx context.Context, agentID string) (ed25519.PublicKey, error)
}

// KeyStoreFunc adapts a function to KeyStore.
type KeyStoreFunc func(ctx context.Context, agentID string) (ed25519.PublicKey, error)

// AgentKey implements KeyStore.
func (f KeyStoreFunc) AgentKey(ctx context.Context, agentID string) (ed25519.PublicKey, error) {
	return f(ctx, agentID)
}

// Verifier checks signed agent requests on the server. The zero values of
// MaxSkew, MaxBody and Now mean DefaultMaxSkew, DefaultMaxBody and
// time.Now; Keys and Nonces are required.
type Verifier struct {
	Keys    KeyStore
	Nonces  NonceStore
	MaxSkew time.Duration
	MaxBody int64
	Now     func() time.Time
	// Batch, when set, checks signatures in batches with other requests'
	// (see SigBatcher); nil checks each on the request's goroutine.
	Batch *SigBatcher

	expanded expandedKeys
}

// Verified is an authenticated request: who sent it and the exact body the
// signature covers. Handlers decode Body, never r.Body directly (Verify
// leaves a fresh copy in r.Body for frameworks that insist).
type Verified struct {
	AgentID   string
	Timestamp time.Time
	Nonce     string
	Body      []byte
}

// Verify authenticates r. Checks run cheapest first so a flood of junk
// costs little: headers parse, timestamp within skew, body within size,
// agent known and not revoked, signature valid, and only then the nonce is
// recorded (so forged requests cannot fill the replay cache). Every error
// wraps one of ErrMissingAuth, ErrMalformed, ErrStaleTimestamp, ErrTooLarge,
// ErrUnknownAgent, ErrRevokedAgent, ErrBadSignature, ErrReplay or ErrBusy,
// except KeyStore or NonceStore failures, which are returned as they are.
func (v *Verifier) Verify(r *http.Request) (*Verified, error) {
	agentID := r.Header.Get(HeaderAgent)
	tsStr := r.Header.Get(HeaderTimestamp)
	nonce := r.Header.Get(HeaderNonce)
	sigStr := r.Header.Get(HeaderSignature)
	for _, h := range [][2]string{{HeaderAgent, agentID}, {HeaderTimestamp, tsStr}, {HeaderNonce, nonce}, {HeaderSignature, sigStr}} {
		if h[1] == "" {
			return nil, errf(ErrMissingAuth, h[0], "header missing")
		}
	}
	if err := checkID(HeaderAgent, agentID, true); err != nil {
		return nil, errf(ErrMalformed, HeaderAgent, "%s", err.Msg)
	}
	tsMs, err := strconv.ParseInt(tsStr, 10, 64)
	if err != nil || tsMs <= 0 || len(tsStr) > 16 {
		return nil, errf(ErrMalformed, HeaderTimestamp, "not a unix time in milliseconds")
	}
	if len(nonce) > 128 {
		return nil, errf(ErrMalformed, HeaderNonce, "too long")
	}
	nb, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(nb) < 16 || len(nb) > 64 {
		return nil, errf(ErrMalformed, HeaderNonce, "must be 16..64 bytes in unpadded base64url")
	}
	if len(sigStr) > 128 {
		return nil, errf(ErrMalformed, HeaderSignature, "too long")
	}
	sig, err := base64.StdEncoding.DecodeString(sigStr)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, errf(ErrMalformed, HeaderSignature, "must be %d bytes in base64", ed25519.SignatureSize)
	}

	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	t := now()
	ts := time.UnixMilli(tsMs)
	if d := t.Sub(ts); d > skew || d < -skew {
		return nil, errf(ErrStaleTimestamp, HeaderTimestamp, "off by %s from server time (allowed %s)", d.Round(time.Millisecond), skew)
	}

	maxBody := v.MaxBody
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	if r.ContentLength > maxBody {
		return nil, errf(ErrTooLarge, "", "%d bytes, limit %d", r.ContentLength, maxBody)
	}
	var body []byte
	if r.Body != nil {
		body, err = readLimited(r.Body, r.ContentLength, maxBody)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}

	ctx := r.Context()
	key, err := v.Keys.AgentKey(ctx, agentID)
	if err != nil {
		if errors.Is(err, ErrUnknownAgent) || errors.Is(err, ErrRevokedAgent) {
			return nil, err
		}
		return nil, fmt.Errorf("verify request: key lookup for %s: %w", agentID, err)
	}
	if len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("verify request: stored key for %s has %d bytes", agentID, len(key))
	}
	msg := CanonicalString(r.Method, requestURI(r), agentID, tsStr, nonce, body)
	if !v.checkSignature(key, msg, sig) {
		return nil, errf(ErrBadSignature, HeaderSignature, "does not verify")
	}
	// A nonce must be remembered as long as its timestamp can still pass:
	// until ts+skew, and ts may be up to skew ahead of now. Using the upper
	// bound now+2·skew for every entry keeps the store's expiry order equal
	// to its insertion order.
	if err := v.Nonces.Use(ctx, agentID+"\x00"+nonce, t, t.Add(2*skew)); err != nil {
		if errors.Is(err, ErrReplay) || errors.Is(err, ErrBusy) {
			return nil, err
		}
		return nil, fmt.Errorf("verify request: nonce store: %w", err)
	}
	return &Verified{AgentID: agentID, Timestamp: ts, Nonce: nonce, Body: body}, nil
}

// checkSignature verifies with the agent's expanded key, in a batch when
// the Verifier has a batcher. A stored key that is not a curve point
// verifies nothing.
func (v *Verifier) checkSignature(key ed25519.PublicKey, msg, sig []byte) bool {
	x, ok := v.expanded.get(key)
	if !ok {
		return false
	}
	if v.Batch != nil {
		return v.Batch.Verify(x, msg, sig)
	}
	return voi.VerifyExpanded(x, msg, sig)
}

// readLimited reads a body of at most limit bytes. When the sender
// declared its length (every agent does), it reads into one buffer of
// exactly that size instead of growing one: growing was a tenth of a
// heartbeat's cost.
func readLimited(body io.Reader, declared, limit int64) ([]byte, error) {
	if declared > limit {
		return nil, errf(ErrTooLarge, "", "%d bytes, limit %d", declared, limit)
	}
	if declared >= 0 {
		buf := getBody(int(declared) + 1) // one more, to see a body longer than declared
		n, err := io.ReadFull(body, buf)
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			return buf[:n], nil // net/http reports a short body as its own error
		case err != nil:
			return nil, errf(ErrMalformed, "", "reading body: %v", err)
		}
		// The body is longer than declared (a server never lets that
		// through; an in-process caller might).
		rest, err := io.ReadAll(io.LimitReader(body, limit+1-int64(n)))
		if err != nil {
			return nil, errf(ErrMalformed, "", "reading body: %v", err)
		}
		buf = append(buf, rest...)
		if int64(len(buf)) > limit {
			return nil, errf(ErrTooLarge, "", "limit %d bytes", limit)
		}
		return buf, nil
	}
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, errf(ErrMalformed, "", "reading body: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, errf(ErrTooLarge, "", "limit %d bytes", limit)
	}
	return b, nil
}

// bodies recycles request bodies the handler gives back (Verified.Release):
// a heartbeat's ~5 KiB buffer was its largest allocation.
var bodies sync.Pool

// maxPooledBody keeps an occasional large body (a log batch) from being
// held by the pool.
const maxPooledBody = 16 << 10

func getBody(n int) []byte {
	if n <= maxPooledBody {
		if p, ok := bodies.Get().(*[]byte); ok && cap(*p) >= n {
			return (*p)[:n]
		}
		return make([]byte, n, maxPooledBody)
	}
	return make([]byte, n)
}

// Release gives the body's buffer back for another request to use. Call it
// only when nothing still refers to Body (a decoded heartbeat holds copies
// of its strings, not slices of the body); the Verified must not be used
// after.
func (v *Verified) Release() {
	if b := v.Body; cap(b) == maxPooledBody {
		v.Body = nil
		b = b[:0]
		bodies.Put(&b)
	}
}

// requestURI is the path and query as the client sent them. Servers set
// r.RequestURI; requests built in tests may only have r.URL.
func requestURI(r *http.Request) string {
	if r.RequestURI != "" {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// VerifyHeartbeat is the whole server-side check of a heartbeat request:
// Verify, DecodeHeartbeat, and the body's agent_id equal to the signer's.
// The server then calls CheckContinuity against the agent's last accepted
// beat before applying anything.
func (v *Verifier) VerifyHeartbeat(r *http.Request) (*Verified, Heartbeat, error) {
	vr, err := v.Verify(r)
	if err != nil {
		return nil, Heartbeat{}, err
	}
	hb, err := DecodeHeartbeat(vr.Body)
	if err != nil {
		return nil, Heartbeat{}, err
	}
	if hb.AgentID != vr.AgentID {
		return nil, Heartbeat{}, errf(ErrAgentMismatch, "agent_id", "signed by %s", vr.AgentID)
	}
	return vr, hb, nil
}
