package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

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
	const fleet = 50
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
	const beats, senders = 40000, 32
	work := make([][]byte, beats)
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
		// The request as net/http's client puts it on the wire, kept
		// whole: the senders below only write it and read the answer,
		// as a load generator does, so the two cores go to the server.
		var wire bytes.Buffer
		if err := req.Write(&wire); err != nil {
			b.Fatal(err)
		}
		work[i] = wire.Bytes()
	}
	// Agents beat concurrently over keep-alive connections, one request
	// at a time on each, as a fleet does. 32 connections: a server's
	// signature batches form from requests in flight together, and a fleet
	// has thousands; with 8 a third of the two cores sat idle while every
	// request waited on its batch.
	addr := strings.TrimPrefix(srv.URL(), "http://")
	conns := make([]net.Conn, senders)
	for w := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[w] = c
	}
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	var applied atomic.Int64
	for w := 0; w < senders; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := conns[w]
			rd := bufio.NewReader(conn)
			for {
				i := int(next.Add(1)) - 1
				if i >= beats {
					return
				}
				if _, err := conn.Write(work[i]); err != nil {
					errs <- err
					return
				}
				code, err := readStatus(rd)
				if err != nil {
					errs <- err
					return
				}
				// Senders race: a beat overtaken by a newer one of the same
				// machine is refused as stale (409), which is also a
				// verified request; anything else is a failure.
				switch code {
				case http.StatusOK:
					applied.Add(1)
				case http.StatusConflict:
				default:
					errs <- &statusErr{code}
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
	// Applied means stored: the write-behind (once a second a machine)
	// brings every agent's row to within the last few racing beats.
	for n, id := range ids {
		want := uint64(beats/fleet) - senders
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			a, err := srv.Store.AgentByID(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			if a.LastSeq >= want {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("agent %d: stored seq %d, want at least %d", n, a.LastSeq, want)
			}
		}
	}
	batchStats := protocol.SharedSigBatcher().Stats()

	// The signature check alone, one core, in the same run: crypto/ed25519
	// (the reference the ratio is taken against), and curve25519-voi in
	// batches of 64, what the server's batcher approaches under load.
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
	xpub, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
	if err != nil {
		b.Fatal(err)
	}
	bv := voi.NewBatchVerifierWithCapacity(64)
	bstart := time.Now()
	for i := 0; i < verifies; i += 64 {
		bv.Reset()
		for range 64 {
			bv.AddExpanded(xpub, msg, sig)
		}
		if !bv.VerifyBatchOnly(nil) {
			b.Fatal("batch verify failed")
		}
	}
	belapsed := time.Since(bstart)
	perS := beats / elapsed.Seconds()
	verifyPerS := verifies / velapsed.Seconds()
	b.ReportMetric(perS, "BENCH:agent_heartbeats_per_s:heartbeats/s")
	b.ReportMetric(verifyPerS, "BENCH:ed25519_verify_per_s:ops/s")
	b.ReportMetric(float64(verifies+63)/64*64/belapsed.Seconds(), "BENCH:ed25519_batch_verify_per_s:ops/s")
	b.ReportMetric(perS/verifyPerS, "BENCH:agent_heartbeats_vs_verify_ratio:ratio")
	if batchStats.Batches > 0 {
		b.ReportMetric(float64(batchStats.Batched)/float64(batchStats.Batches), "BENCH:agent_sig_batch_mean:signatures")
	}
	b.Logf("signature batcher over the run: %+v", batchStats)
}

// readStatus reads one HTTP/1.1 response off a kept-alive connection and
// returns its status; the body (always sized: the server buffers these
// small answers) is discarded.
func readStatus(rd *bufio.Reader) (int, error) {
	line, err := rd.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	for {
		line, err = rd.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), "Content-Length") {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return 0, fmt.Errorf("bad length %q", v)
			}
		}
	}
	if length < 0 {
		return 0, fmt.Errorf("status %d: response without a length", code)
	}
	_, err = rd.Discard(length)
	return code, err
}

type statusErr struct{ code int }

func (e *statusErr) Error() string { return http.StatusText(e.code) }
