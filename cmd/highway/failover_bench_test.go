package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models/dbtest"
)

// BenchmarkReplicaFailover measures a takeover as an operator sees it:
// two replicas on one PostgreSQL with the default settings (a standby
// tries every 250 ms), a market of 50 registered machines; the leader's
// database session ends (what PostgreSQL sees when the process dies) and
// the clock runs until the standby's /readyz says leader.
func BenchmarkReplicaFailover(b *testing.B) {
	for range b.N {
		dsn := dbtest.PostgresDSN(b)
		a := startServerAt(b, "127.0.0.1:0", dsn, accounts.Config{}, nil)
		standby := startServerAt(b, "127.0.0.1:0", dsn, accounts.Config{}, nil)
		u, _, err := accounts.New(a.Store, accounts.Config{Hash: cheapHash}).Signup(b.Context(),
			accounts.SignupInput{Email: "p@example.com", Password: "0123456789", Provider: true}, "127.0.0.1", "bench")
		if err != nil {
			b.Fatal(err)
		}
		for i := range 50 {
			registerTestAgent(b, a, u.ID, fmt.Sprintf("bench-%d", i))
		}
		start := time.Now()
		dbtest.EndLeaderSession(b, standby.Store)
		for {
			// A standby's /readyz is 200 too while it forwards to a live
			// leader: the takeover is done when it says it leads.
			resp, err := http.Get(standby.URL() + "/readyz")
			if err == nil {
				var body struct{ Role string }
				_ = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK && body.Role == "leader" {
					break
				}
			}
			if time.Since(start) > 30*time.Second {
				b.Fatal("no takeover in 30 s")
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "BENCH:replica_failover_ms:ms")
	}
}

// BenchmarkStandbyViewLag measures how long a change on the leader takes
// to reach a live page open on a standby, with the default settings (the
// view catches up every 100 ms): two replicas on one PostgreSQL, an event
// stream open on the standby, and 20 changes on the leader (a provider
// suspended, then reinstated), each timed from the leader's call to the
// "changed" event arriving. It reports the mean and the slowest.
func BenchmarkStandbyViewLag(b *testing.B) {
	for range b.N {
		dsn := dbtest.PostgresDSN(b)
		leader := startServerAt(b, "127.0.0.1:0", dsn, accounts.Config{}, nil)
		standby := startServerAt(b, "127.0.0.1:0", dsn, accounts.Config{}, nil)
		for deadline := time.Now().Add(10 * time.Second); standby.view.current() == nil; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("the standby loaded no view in 10 s")
			}
		}
		events, _ := changeEvents(b, standby.URL()+"/market/events")
		const changes = 20
		var total, slowest time.Duration
		for i := range changes {
			// The stream sends at most one event a second (sseCoalesce):
			// each change waits that out, plus a step that spreads the
			// changes over the view's 100 ms catch-up cycle.
			time.Sleep(time.Second + time.Duration(i*37%100)*time.Millisecond)
			// The view may report one change twice (its log entry, then
			// the leader's published count): the echo is dropped.
			for len(events) > 0 {
				<-events
			}
			start := time.Now()
			if err := leader.market().SetSuspended(b.Context(), "bench-provider", i%2 == 0); err != nil {
				b.Fatal(err)
			}
			select {
			case at := <-events:
				lag := at.Sub(start)
				total += lag
				slowest = max(slowest, lag)
			case <-time.After(5 * time.Second):
				b.Fatalf("change %d never reached the standby's live page", i)
			}
		}
		b.ReportMetric(float64(total.Microseconds())/changes/1000, "BENCH:replica_view_lag_ms:ms")
		b.ReportMetric(float64(slowest.Microseconds())/1000, "BENCH:replica_view_lag_max_ms:ms")
	}
}

// changeEvents opens a live page's event stream at url and sends the time
// each "changed" event arrives; the stream is closed when the test ends.
func changeEvents(tb testing.TB, url string) (<-chan time.Time, http.Header) {
	tb.Helper()
	resp, err := http.Get(url) //nolint:bodyclose // closed at cleanup: the stream outlives this call, read by the goroutine below
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = resp.Body.Close() })
	events := make(chan time.Time, 64)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == "event: changed" {
				events <- time.Now()
			}
		}
	}()
	return events, resp.Header
}
