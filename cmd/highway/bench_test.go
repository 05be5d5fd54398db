package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/provider-agent/gpu"
	"github.com/highway-compute/highway/provider-agent/protocol"
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
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	m := &models.Machine{Hostname: "bench", Simulated: true}
	tok := "bench-token-0123456789"
	if err := srv.Store.CreateEnrollmentToken(ctx, &models.EnrollmentToken{TokenHash: accounts.HashToken(tok), ProviderID: u.ID,
		CreatedAt: time.Now().UTC(), ExpiresAt: time.Now().Add(time.Hour).UTC()}); err != nil {
		b.Fatal(err)
	}
	a := &models.Agent{PublicKey: base64.StdEncoding.EncodeToString(pub)}
	if err := srv.Store.RegisterAgent(ctx, accounts.HashToken(tok), time.Now(), m, a); err != nil {
		b.Fatal(err)
	}
	fake, _ := gpu.FakeProfile("dgxh100")
	sess, err := gpu.Open(fake)
	if err != nil {
		b.Fatal(err)
	}
	inv, _ := sess.Snapshot()
	_ = sess.Close()
	gpus := inv.GPUs

	const beats = 2000
	var seq atomic.Uint64
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < beats/2; i++ {
				hb := protocol.Heartbeat{AgentID: a.ID, Seq: seq.Add(1), BootID: "bench", SentAt: time.Now().UnixMilli(), AgentVersion: "bench", Simulated: true, GPUs: gpus}
				body, _ := json.Marshal(hb)
				req, _ := http.NewRequest(http.MethodPost, srv.URL()+protocol.PathHeartbeat, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if err := protocol.Sign(req, a.ID, key); err != nil {
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
