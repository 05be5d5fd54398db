package main

import (
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
