package protocol

import (
	"bytes"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Benchmarks follow the repo convention: each reports one figure as
// b.ReportMetric(v, "BENCH:<name>:<unit>") and does a fixed, meaningful
// amount of work per b.N iteration, so `make bench` (-benchtime 1x) still
// measures something. The rate is timed with time.Now around the work.

const benchBatch = 2000

// BenchmarkEd25519Verify is the raw cost of ed25519.Verify on a canonical
// string of heartbeat size: the floor under the Verifier's throughput.
func BenchmarkEd25519Verify(b *testing.B) {
	k := newKey(b, "agent-1")
	msg := CanonicalString(http.MethodPost, PathHeartbeat, k.id, "1760000000000", "AAAAAAAAAAAAAAAAAAAAAAAA", mustJSON(b, sampleHeartbeat(k.id, 8)))
	sig := ed25519.Sign(k.priv, msg)
	var total time.Duration
	ops := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		for j := 0; j < benchBatch; j++ {
			if !ed25519.Verify(k.pub, msg, sig) {
				b.Fatal("verify failed")
			}
		}
		total += time.Since(start)
		ops += benchBatch
	}
	b.ReportMetric(float64(ops)/total.Seconds(), "BENCH:protocol_ed25519_verify_per_s:ops/s")
}

// BenchmarkVerifyHeartbeat is the whole server-side path for one realistic
// 8-GPU heartbeat: parse the four headers, check the clock, read and hash
// the body, look up the key, verify the signature, record the nonce, decode
// the JSON and Validate it. Requests are signed ahead of time (that is the
// agent's cost, not the server's), each with its own nonce.
func BenchmarkVerifyHeartbeat(b *testing.B) {
	k := newKey(b, "agent-1")
	now := time.UnixMilli(1_760_000_000_000)
	clock := func() time.Time { return now }
	s := &Signer{AgentID: k.id, Key: k.priv, Now: clock}
	body := mustJSON(b, sampleHeartbeat(k.id, 8))
	type pre struct{ hdr http.Header }
	reqs := make([]pre, benchBatch)
	for i := range reqs {
		out, _ := http.NewRequest(http.MethodPost, "http://example"+PathHeartbeat, bytes.NewReader(body))
		if err := s.Sign(out); err != nil {
			b.Fatal(err)
		}
		reqs[i] = pre{hdr: out.Header}
	}
	keys := keyStore(map[string]ed25519.PublicKey{k.id: k.pub}, nil)
	var total time.Duration
	ops := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A fresh replay cache per round, so the same pre-signed requests
		// are accepted again (outside the timed section).
		v := &Verifier{Keys: keys, Nonces: NewMemoryNonceStore(4 * benchBatch), Now: clock}
		in := make([]*http.Request, benchBatch)
		for j := range in {
			in[j] = httptest.NewRequest(http.MethodPost, PathHeartbeat, bytes.NewReader(body))
			in[j].Header = reqs[j].hdr
		}
		start := time.Now()
		for j := 0; j < benchBatch; j++ {
			if _, _, err := v.VerifyHeartbeat(in[j]); err != nil {
				b.Fatal(err)
			}
		}
		total += time.Since(start)
		ops += benchBatch
	}
	b.ReportMetric(float64(ops)/total.Seconds(), "BENCH:agent_heartbeats_verify_per_s:ops/s")
}
