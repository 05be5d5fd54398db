package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
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

	// Every beat is built and signed before the timer starts, with its
	// own sequence number, as a fleet's machines each sign their own: the
	// figure is the server's work (HTTP, signature, decoding, applying),
	// not the test's signing on the same cores.
	const beats, senders = 2000, 8
	type signed struct {
		hdr  http.Header
		body []byte
	}
	work := make([]signed, beats)
	for i := range work {
		n := i % fleet
		id, key := ids[n], keys[n]
		gs := append([]protocol.GPU(nil), gpus...)
		for j := range gs {
			gs[j].UUID = fmt.Sprintf("%s-%d", id, j) // one machine's GPUs are its own
		}
		hb := protocol.Heartbeat{AgentID: id, Seq: uint64(i/fleet + 1), BootID: "bench", SentAt: time.Now().UnixMilli(), AgentVersion: "bench", Simulated: true, GPUs: gs}
		body, _ := json.Marshal(hb)
		req, _ := http.NewRequest(http.MethodPost, srv.URL()+protocol.PathHeartbeat, bytes.NewReader(body))
		if err := protocol.Sign(req, id, key); err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		work[i] = signed{hdr: req.Header, body: body}
	}
	// Agents beat concurrently over keep-alive connections, as a fleet
	// does; 8 senders keep both cores busy rather than measuring one
	// request's round trip.
	var next atomic.Int64
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	var applied atomic.Int64
	for w := 0; w < senders; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= beats {
					return
				}
				s := work[i]
				req, _ := http.NewRequest(http.MethodPost, srv.URL()+protocol.PathHeartbeat, bytes.NewReader(s.body))
				req.Header = s.hdr
				resp, err := httpc.Do(req)
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				// Senders race: a beat overtaken by a newer one of the same
				// machine is refused as stale (409), which is also a
				// verified request; anything else is a failure.
				switch resp.StatusCode {
				case http.StatusOK:
					applied.Add(1)
				case http.StatusConflict:
				default:
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
	if applied.Load() < beats/2 {
		b.Fatalf("only %d of %d beats applied", applied.Load(), beats)
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
