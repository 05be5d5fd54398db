package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/protocol"
)

// BenchmarkWebBrowse measures the filtered browse API over HTTP on
// loopback with 100 000 live GPUs listed (12 500 verified 8-GPU machines
// across the catalog's models and 3 regions), against a bare gin handler
// served the same way in the same run.
func BenchmarkWebBrowse(b *testing.B) {
	const machines, gpusEach = 12_500, 8
	srv := startServerAt(b, "127.0.0.1:0", dbtest.SQLiteDSN(b), accounts.Config{}, func(m *Main) {
		m.Config.Regions = "us-east=127.0.0.1:1,eu-west=127.0.0.1:1,ap-south=127.0.0.1:1"
		m.Broker = broker.Config{SnapshotEvery: time.Hour}
	})
	ctx := context.Background()
	u, _, err := accounts.New(srv.Store, accounts.Config{Hash: cheapHash}).Signup(ctx,
		accounts.SignupInput{Email: "fleet@example.com", Password: "0123456789", Provider: true}, "127.0.0.1", "bench")
	if err != nil {
		b.Fatal(err)
	}
	models_ := []string{"H100", "A100", "L40S", "RTX4090", "H200", "L4"}
	for i, m := range models_ {
		if err := srv.Market.SetPrice(ctx, u.ID, m, highway.Amount(500_000+i*300_000)); err != nil {
			b.Fatal(err)
		}
	}
	names := map[string]string{"H100": "NVIDIA H100 80GB HBM3", "A100": "NVIDIA A100-SXM4-80GB", "L40S": "NVIDIA L40S",
		"RTX4090": "NVIDIA GeForce RTX 4090", "H200": "NVIDIA H200", "L4": "NVIDIA L4"}
	regions := []string{"us-east", "eu-west", "ap-south"}
	now := time.Now().UTC()
	rows := make([]models.Machine, machines)
	for i := range rows {
		rows[i] = models.Machine{ID: fmt.Sprintf("bench-%06d", i), ProviderID: u.ID, Hostname: "bench", Simulated: true, RTTJSON: "{}",
			VerifiedAt: &now, CreatedAt: now, UpdatedAt: now}
	}
	if err := srv.Store.DB.CreateInBatches(rows, 500).Error; err != nil {
		b.Fatal(err)
	}
	for i := range rows {
		model := models_[i%len(models_)]
		hb := &protocol.Heartbeat{AgentID: "agent-" + rows[i].ID, ProviderAddress: "hwy1benchprovider",
			RTTms: map[string]int64{regions[0]: int64(5 + i%40), regions[1]: int64(40 + i%90), regions[2]: int64(90 + i%120)}}
		for g := 0; g < gpusEach; g++ {
			hb.GPUs = append(hb.GPUs, protocol.GPU{Index: g, UUID: fmt.Sprintf("GPU-%s-%d", rows[i].ID, g), Name: names[model],
				Class: model, MemoryTotalMiB: 81_920, Free: (i+g)%5 != 0})
		}
		if err := srv.Market.MachineBeat(ctx, broker.Beat{MachineID: rows[i].ID, AgentID: hb.AgentID, ProviderID: u.ID, Heartbeat: hb}); err != nil {
			b.Fatal(err)
		}
	}
	if offers, _ := srv.Market.Offers(highway.OfferFilter{Limit: 1}); len(offers) == 0 {
		b.Fatal("no offers listed")
	}

	// The bare handler: gin, one route, same loopback and client.
	gin.SetMode(gin.ReleaseMode)
	hello := gin.New()
	hello.GET("/hello", func(c *gin.Context) { c.String(http.StatusOK, "hello") })
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: hello, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	const requests, workers = 10_000, 8
	run := func(url func(i int) string) (rps float64, p99 time.Duration) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
		lat := make([]time.Duration, requests)
		var wg sync.WaitGroup
		var next sync.Mutex
		n := 0
		start := time.Now()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					next.Lock()
					i := n
					n++
					next.Unlock()
					if i >= requests {
						return
					}
					t0 := time.Now()
					resp, err := client.Get(url(i))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					lat[i] = time.Since(t0)
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		slices.Sort(lat)
		return float64(requests) / elapsed.Seconds(), lat[requests*99/100]
	}
	browse := func(i int) string {
		return fmt.Sprintf("%s/api/v1/offers?model=%s&count=2&max_price=3000000&region=%s&max_rtt_ms=60&sort=price&limit=50",
			srv.URL(), models_[i%len(models_)], regions[i%len(regions)])
	}
	helloURL := func(int) string { return "http://" + ln.Addr().String() + "/hello" }
	b.ResetTimer()
	// HIGHWAY_BENCH_CPUPROFILE profiles the first browse run alone (setup
	// and the hello runs excluded), which is where the time that matters is.
	if path := os.Getenv("HIGHWAY_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
	}
	// Two rounds, alternating, keeping each side's better round: a busy
	// neighbour on this shared machine then costs both sides alike.
	var browseRPS, helloRPS float64
	var browseP99 time.Duration
	for round := 0; round < 2; round++ {
		rps, p99 := run(browse)
		pprof.StopCPUProfile()
		if rps > browseRPS {
			browseRPS, browseP99 = rps, p99
		}
		if rps, _ := run(helloURL); rps > helloRPS {
			helloRPS = rps
		}
	}
	b.ReportMetric(float64(browseP99.Microseconds())/1000, "BENCH:web_browse_p99_ms:ms")
	b.ReportMetric(browseRPS, "BENCH:web_browse_rps:req/s")
	b.ReportMetric(helloRPS, "BENCH:web_hello_rps:req/s")
}
