package handlers

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/web"
)

// sseRecorder is a flushable response that tests can read while the
// stream is still writing.
type sseRecorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *sseRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

func (r *sseRecorder) Flush() {}

func (r *sseRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// fakeMarket mimics broker.Changed: a channel closed and replaced on
// every change, and the count of changes.
type fakeMarket struct {
	mu  sync.Mutex
	ch  chan struct{}
	gen uint64
}

func (m *fakeMarket) changed() (<-chan struct{}, uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ch, m.gen
}

func (m *fakeMarket) change() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	close(m.ch)
	m.ch = make(chan struct{})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStreamChangesCoalesces(t *testing.T) {
	m := &fakeMarket{ch: make(chan struct{})}
	w := &sseRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		streamChanges(ctx, w, m.changed, 0, false, 300*time.Millisecond, time.Hour, time.Hour)
		close(done)
	}()
	events := func() int { return strings.Count(w.String(), "event: changed\n") }
	waitUntil(t, "the stream to open", func() bool { return strings.HasPrefix(w.String(), "retry: ") })

	// The first change after a quiet spell goes out at once.
	m.change()
	waitUntil(t, "the first event", func() bool { return events() == 1 })

	// A burst inside the window becomes one event at its end, not five,
	// and the last change is not lost.
	for range 5 {
		m.change()
	}
	waitUntil(t, "the coalesced event", func() bool { return events() >= 2 })
	time.Sleep(700 * time.Millisecond)
	if n := events(); n > 3 {
		t.Fatalf("%d events for a burst of 5 changes; want them coalesced", n)
	}

	// The stream ends when the client goes away.
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end after the client left")
	}
}

// A page rendered before a change whose stream opens after it must still
// hear of it: the stream compares the page's generation with the market's.
func TestStreamChangesSinceRender(t *testing.T) {
	for _, tc := range []struct {
		name     string
		since    uint64
		hasSince bool
		want     int
	}{
		{"rendered before the change", 1, true, 1},
		{"rendered at the current generation", 2, true, 0},
		{"no generation given", 0, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &fakeMarket{ch: make(chan struct{})}
			m.change()
			m.change() // the market is at generation 2
			w := &sseRecorder{}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			streamChanges(ctx, w, m.changed, tc.since, tc.hasSince, time.Second, time.Hour, time.Hour)
			if n := strings.Count(w.String(), "event: changed\n"); n != tc.want {
				t.Fatalf("%d events, want %d:\n%s", n, tc.want, w.String())
			}
		})
	}
}

func TestStreamChangesPingsAndEnds(t *testing.T) {
	m := &fakeMarket{ch: make(chan struct{})}
	w := &sseRecorder{}
	done := make(chan struct{})
	go func() {
		streamChanges(context.Background(), w, m.changed, 0, false, time.Second, 20*time.Millisecond, 300*time.Millisecond)
		close(done)
	}()
	waitUntil(t, "a ping", func() bool { return strings.Contains(w.String(), "\n: ping\n\n") })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream outlived its maximum life")
	}
}

func TestAmountFormatting(t *testing.T) {
	for in, want := range map[uint64]string{0: "0.000", 1: "0.001", 1000: "1.000", 12345: "12.345"} {
		if got := web.FormatMilli(in); got != want {
			t.Errorf("FormatMilli(%d) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int64]string{0: "0.00 %", 5: "0.05 %", 9950: "99.50 %", 10000: "100.00 %"} {
		if got := web.FormatBps(in); got != want {
			t.Errorf("FormatBps(%d) = %q, want %q", in, got, want)
		}
	}
}

// The server runs with a ReadTimeout (serve.go); a stream must outlive it,
// or live pages would go stale every ReadTimeout.
func TestMarketEventsOutliveReadTimeout(t *testing.T) {
	store := dbtest.SQLite(t)
	b, err := broker.New(context.Background(), broker.Config{Store: store, Regions: []string{"local"}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Broker: b, Store: store, Accounts: accounts.New(store, accounts.Config{}),
		Logger: slog.New(slog.DiscardHandler), Secret: []byte(strings.Repeat("s", 32)), BaseURL: "http://127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout = 200 * time.Millisecond
	srv.Start()
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/market/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "retry: ") {
		t.Fatalf("first line %q, %v", line, err)
	}
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, r)
		ended <- err
	}()
	select {
	case err := <-ended:
		t.Fatalf("stream ended after the read timeout: %v", err)
	case <-time.After(time.Second):
	}
}
