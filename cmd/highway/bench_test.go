package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/provider-agent/gpu"
)

// BenchmarkAgentHeartbeats measures signed 8-GPU heartbeats sent over HTTP
// on loopback to the real server, verified and applied to SQLite, end to
// end; and raw ed25519 verification in the same run for the ratio.
func BenchmarkAgentHeartbeats(b *testing.B) {
	t := &testing.T{}
	srv := startServer(t, dbtest.SQLiteDSN(t), accounts.Config{})
	defer srv.Close()
	ctx := context.Background()
	svc := accounts.New(srv.Store, accounts.Config{Hash: cheapHash})
	u, _, err := svc.Signup(ctx, accounts.SignupInput{Email: "bench@example.com", Password: "0123456789", Provider: true}, "127.0.0.1", "bench")
	if err != nil {
		b.Fatal(err)
	}
	// A fleet of agents, each within its request budget, as in production.
	const fleet = 20
	ids := make([]string, fleet)
	keys := make([]ed25519.PrivateKey, fleet)
	for i := range ids {
		ids[i], keys[i] = registerTestAgent(b, srv, u.ID, fmt.Sprintf("bench-%d", i))
	}
	fake, _ := gpu.FakeProfile("dgxh100")
	sess, err := gpu.Open(fake)
	if err != nil {
		b.Fatal(err)
	}
	inv, _ := sess.Snapshot()
	_ = sess.Close()
	gpus := inv.GPUs

	// Agents beat concurrently, as a fleet does; 8 senders keep both cores
	// busy rather than measuring one request's round trip.
	const beats, senders = 2000, 8
	seqs := make([]atomic.Uint64, fleet)
	var next atomic.Uint64
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for w := 0; w < senders; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < beats/senders; i++ {
				n := int(next.Add(1)) % fleet
				id, key := ids[n], keys[n]
				gs := append([]protocol.GPU(nil), gpus...)
				for j := range gs {
					gs[j].UUID = fmt.Sprintf("%s-%d", id, j) // one machine's GPUs are its own
				}
				hb := protocol.Heartbeat{AgentID: id, Seq: seqs[n].Add(1), BootID: "bench", SentAt: time.Now().UnixMilli(), AgentVersion: "bench", Simulated: true, GPUs: gs}
				body, _ := json.Marshal(hb)
				req, _ := http.NewRequest(http.MethodPost, srv.URL()+protocol.PathHeartbeat, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if err := protocol.Sign(req, id, key); err != nil {
					errs <- err
					return
				}
				resp, err := httpc.Do(req)
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				// Two senders race: a beat overtaken by a newer one is
				// refused as stale (409), which is also a verified request.
				if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusConflict {
					errs <- &statusErr{resp.StatusCode}
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}

	msg := make([]byte, 512)
	key := keys[0]
	pub := key.Public().(ed25519.PublicKey)
	sig := ed25519.Sign(key, msg)
	const verifies = 20000
	vstart := time.Now()
	for i := 0; i < verifies; i++ {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("verify failed")
		}
	}
	velapsed := time.Since(vstart)
	b.ReportMetric(beats/elapsed.Seconds(), "BENCH:agent_heartbeats_per_s:heartbeats/s")
	b.ReportMetric(verifies/velapsed.Seconds(), "BENCH:ed25519_verify_per_s:ops/s")
}

type statusErr struct{ code int }

func (e *statusErr) Error() string { return http.StatusText(e.code) }
