package client

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/highway-compute/highway/protocol"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 30 * time.Second, Int64N: func(n int64) int64 { return n - 1 }}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i, w := range want {
		if got := b.Delay(i); got != w*time.Second {
			t.Errorf("attempt %d: %v, want %v", i, got, w*time.Second)
		}
	}
	low := Backoff{Base: time.Second, Max: 30 * time.Second, Int64N: func(int64) int64 { return 0 }}
	if got := low.Delay(3); got != 4*time.Second {
		t.Fatalf("lowest jitter at attempt 3: %v, want 4s (half of 8s)", got)
	}
	if got := low.Delay(1000); got != 15*time.Second {
		t.Fatalf("huge attempt: %v", got)
	}
	se := &StatusError{Status: 429, RetryAfter: time.Minute}
	if low.DelayFor(0, se) != time.Minute {
		t.Fatal("Retry-After ignored")
	}
}

func TestRetryable(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{errors.New("connection refused"), true},
		{context.Canceled, false},
		{&StatusError{Status: 503}, true},
		{&StatusError{Status: 429}, true},
		{&StatusError{Status: 400}, false},
		{&StatusError{Status: 403, Detail: protocol.ErrorDetail{Reason: "revoked_agent"}}, false},
		{&StatusError{Status: 401, Detail: protocol.ErrorDetail{Reason: "stale_timestamp"}}, true},
		{&StatusError{Status: 401, Detail: protocol.ErrorDetail{Reason: "bad_signature"}}, false},
		{nil, false},
	}
	for _, c := range cases {
		if got := Retryable(c.err); got != c.want {
			t.Errorf("Retryable(%v) = %v", c.err, got)
		}
	}
}

func TestSignedCallsAndErrors(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	pub := priv.Public().(ed25519.PublicKey)
	v := &protocol.Verifier{
		Keys: protocol.KeyStoreFunc(func(_ context.Context, id string) (ed25519.PublicKey, error) {
			if id != "agent-1" {
				return nil, protocol.ErrUnknownAgent
			}
			return pub, nil
		}),
		Nonces: protocol.NewMemoryNonceStore(100),
	}
	var gotQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == protocol.PathRegister {
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(protocol.RegisterResponse{AgentID: "agent-1", HeartbeatIntervalS: 10})
			return
		}
		vr, err := v.Verify(r)
		if err != nil {
			protocol.WriteError(w, err)
			return
		}
		switch r.URL.Path {
		case protocol.PathHeartbeat:
			if _, err := protocol.DecodeHeartbeat(vr.Body); err != nil {
				protocol.WriteError(w, err)
				return
			}
			_ = json.NewEncoder(w).Encode(protocol.HeartbeatResponse{ServerTime: 1})
		case protocol.PathAssignments:
			gotQuery = r.URL.RawQuery
			_ = json.NewEncoder(w).Encode(protocol.AssignmentsResponse{Assignments: []protocol.Assignment{{ID: 5, LeaseID: "l", Action: protocol.ActionStop}}})
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()

	c := &Client{BaseURL: srv.URL, UserAgent: "test"}
	ctx := context.Background()
	reg, err := c.Register(ctx, protocol.RegisterRequest{Token: "t"})
	if err != nil || reg.AgentID != "agent-1" {
		t.Fatalf("register: %+v %v", reg, err)
	}
	if _, err := c.Heartbeat(ctx, protocol.Heartbeat{AgentID: "agent-1", Seq: 1, BootID: "b", SentAt: 1}); err == nil {
		t.Fatal("unsigned call without a signer succeeded")
	}
	c.Signer = &protocol.Signer{AgentID: "agent-1", Key: priv}
	if _, err := c.Heartbeat(ctx, protocol.Heartbeat{AgentID: "agent-1", Seq: 1, BootID: "b", SentAt: 1}); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	// Invalid heartbeat: a 400 naming the field, not retryable.
	_, err = c.Heartbeat(ctx, protocol.Heartbeat{AgentID: "agent-1", Seq: 0, BootID: "b", SentAt: 1})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 400 || se.Detail.Field != "seq" || Retryable(err) {
		t.Fatalf("invalid heartbeat: %v", err)
	}
	a, err := c.Assignments(ctx, 4, 2*time.Second)
	if err != nil || len(a.Assignments) != 1 || gotQuery != "after=4&wait=2" {
		t.Fatalf("assignments: %+v %v %q", a, err, gotQuery)
	}
	if err := c.SendLogs(ctx, protocol.LogBatch{LeaseID: "l"}); err != nil {
		t.Fatal(err)
	}
	c.Signer = &protocol.Signer{AgentID: "agent-2", Key: priv}
	if err := c.SendLogs(ctx, protocol.LogBatch{LeaseID: "l"}); !errors.As(err, &se) || se.Detail.Reason != "unknown_agent" {
		t.Fatalf("unknown agent: %v", err)
	}
}

// TestConnectionsAreReused: clients left on the default transport share
// it, so a stream of heartbeats rides one kept-alive connection instead of
// opening (and leaving idle on the server) one per request.
func TestConnectionsAreReused(t *testing.T) {
	var opened atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(protocol.HeartbeatResponse{ServerTime: 1})
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	_, priv, _ := ed25519.GenerateKey(nil)
	for i := range 20 {
		// A fresh Client each time, as separate agents in one process
		// (the dev fleet) are: they share the transport too.
		c := &Client{BaseURL: srv.URL, Signer: &protocol.Signer{AgentID: "a", Key: priv}}
		if _, err := c.Heartbeat(context.Background(), protocol.Heartbeat{AgentID: "a", Seq: uint64(i + 1), BootID: "b", SentAt: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if n := opened.Load(); n != 1 {
		t.Fatalf("20 sequential heartbeats opened %d connections, want 1", n)
	}
}

// TestUnansweredCallTimesOut: a server that accepts a heartbeat and never
// answers costs the loop CallTimeout, then a retryable error, instead of
// stalling it for good.
func TestUnansweredCallTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	_, priv, _ := ed25519.GenerateKey(nil)
	c := &Client{BaseURL: srv.URL, Signer: &protocol.Signer{AgentID: "a", Key: priv}, CallTimeout: 200 * time.Millisecond}
	done := make(chan error, 1)
	go func() {
		_, err := c.Heartbeat(context.Background(), protocol.Heartbeat{AgentID: "a", Seq: 1, BootID: "b", SentAt: 1})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) || !Retryable(err) {
			t.Fatalf("unanswered heartbeat: err = %v, want a retryable deadline error", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("an unanswered heartbeat was never given up")
	}
}
