package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Signature headers. All four are required on every signed request.
const (
	HeaderAgent     = "X-Highway-Agent"
	HeaderTimestamp = "X-Highway-Timestamp" // unix ms, decimal
	HeaderNonce     = "X-Highway-Nonce"     // base64url without padding, 16..64 random bytes
	HeaderSignature = "X-Highway-Signature" // base64 (std) ed25519 signature, 64 bytes
)

// SignatureDomain is the first line of the signed string. It keeps an agent
// signature from ever being valid in another context that signs with the
// same key format.
const SignatureDomain = "highway-agent-v1"

// NonceBytes is the size of the random nonce the client generates.
const NonceBytes = 18 // 24 base64url characters, no padding

// CanonicalString is what the agent signs, newline-separated:
//
//	highway-agent-v1
//	METHOD
//	/path?query        (the request URI exactly as sent)
//	agent id
//	timestamp (unix ms)
//	nonce
//	hex(SHA-256(body))
//
// Hashing the body keeps the signed string small and fixed-size; including
// the agent id binds the signature to the claimed identity.
func CanonicalString(method, requestURI, agentID, timestamp, nonce string, body []byte) []byte {
	sum := sha256.Sum256(body)
	var b bytes.Buffer
	b.Grow(len(SignatureDomain) + len(method) + len(requestURI) + len(agentID) + len(timestamp) + len(nonce) + 2*sha256.Size + 6)
	for _, s := range []string{SignatureDomain, method, requestURI, agentID, timestamp, nonce} {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	var hexSum [2 * sha256.Size]byte
	hex.Encode(hexSum[:], sum[:])
	b.Write(hexSum[:])
	return b.Bytes()
}

// Signer signs requests for one agent. Now and Rand are injectable for
// tests; the zero values mean time.Now and crypto/rand.
type Signer struct {
	AgentID string
	Key     ed25519.PrivateKey
	Now     func() time.Time
	Rand    io.Reader
}

// Sign is Signer{AgentID: agentID, Key: key}.Sign(req).
func Sign(req *http.Request, agentID string, key ed25519.PrivateKey) error {
	return (&Signer{AgentID: agentID, Key: key}).Sign(req)
}

// Sign adds the four signature headers to req. It reads the body (through
// GetBody when set, which http.NewRequest sets for in-memory bodies) and
// leaves req with a fresh, unread body. Each call uses a new nonce, so a
// retried request must be signed again, never re-sent with old headers.
func (s *Signer) Sign(req *http.Request) error {
	if len(s.Key) != ed25519.PrivateKeySize {
		return fmt.Errorf("sign request: private key has %d bytes, want %d", len(s.Key), ed25519.PrivateKeySize)
	}
	body, err := readBody(req)
	if err != nil {
		return fmt.Errorf("sign request: %w", err)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	rnd := s.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	var nb [NonceBytes]byte
	if _, err := io.ReadFull(rnd, nb[:]); err != nil {
		return fmt.Errorf("sign request: nonce: %w", err)
	}
	nonce := base64.RawURLEncoding.EncodeToString(nb[:])
	ts := strconv.FormatInt(now().UnixMilli(), 10)
	msg := CanonicalString(req.Method, req.URL.RequestURI(), s.AgentID, ts, nonce, body)
	sig := ed25519.Sign(s.Key, msg)
	req.Header.Set(HeaderAgent, s.AgentID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	return nil
}

// readBody returns the body bytes and resets req.Body so it can be sent.
func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	var rc io.ReadCloser
	var err error
	if req.GetBody != nil {
		rc, err = req.GetBody()
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
	} else {
		rc = req.Body
	}
	body, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.ContentLength = int64(len(body))
	return body, nil
}
