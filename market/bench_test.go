package market

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/highway-compute/highway/hugeheap"
)

// Benchmarks for `make bench` (run with -benchtime 1x): each iteration does
// a fixed amount of work and reports BENCH:<name>:<unit> metrics, so one
// iteration is already meaningful. The world is the issue's: 1 000 000
// resting offers, 50 GPU models × 20 regions (1 000 per model and region),
// 8 GPUs each, RTTs from a ring of regions (3 ms in-region, +7 ms a hop,
// up to 73 ms) plus per-machine jitter.

const (
	benchModels   = 50
	benchRegions  = 20
	benchMachines = 1_000_000
	benchOps      = 1_000_000
)

func benchConfig() Config {
	c := Config{HeartbeatIntervalMs: 10_000, MissedBeats: 3, ReservationTTLms: 5_000}
	for i := 0; i < benchModels; i++ {
		c.Models = append(c.Models, fmt.Sprintf("gpu-%02d", i))
	}
	for i := 0; i < benchRegions; i++ {
		c.Regions = append(c.Regions, fmt.Sprintf("region-%02d", i))
	}
	return c
}

type benchWorld struct {
	r         *rand.Rand
	cfg       Config
	next      int // next new machine number
	now       int64
	orderN    int
	recent    []string // matched orders, for confirm/release
	basePrice [benchModels]int64
}

func newBenchWorld() *benchWorld {
	w := &benchWorld{r: rand.New(rand.NewPCG(1, 2)), cfg: benchConfig()}
	for m := range w.basePrice {
		w.basePrice[m] = 500_000 + int64(m)*50_000
	}
	return w
}

// benchMachineID builds the id afresh each time, as decoding a request or
// a log entry does: commands must not share their id bytes with the
// engine's copy, or the benchmark would hide the cache miss a real lookup
// pays (or, here, pay it twice).
func benchMachineID(i int) string { return benchUUID(1, i) }

// benchUUID is a UUIDv7-shaped id, 36 bytes as the marketplace's are
// (models.NewID): hashing and decoding an id cost by its length and
// spelling, and ids of other shapes take other paths (idKey). Short ids
// ("machine-17") made every lookup look cheaper than a real one.
func benchUUID(kind, i int) string {
	const hexDigits = "0123456789abcdef"
	// One allocation, the string, as decoding it from a request makes.
	b := [36]byte{8: '-', 13: '-', 14: '7', 18: '-', 19: '8', 23: '-'}
	put := func(at, n int, v uint64) {
		for j := at + n - 1; j >= at; j-- {
			b[j], v = hexDigits[v&15], v>>4
		}
	}
	x := uint64(i) * 0x9E3779B97F4A7C15
	put(0, 8, 0x01900000|uint64(i)>>16&0xffff)
	put(9, 4, uint64(i)&0xffff)
	put(15, 3, uint64(kind)&0xfff)
	put(20, 3, x>>52)
	put(24, 12, x&0xffffffffffff)
	return string(b[:])
}

func ringRTT(a, b int) int {
	d := a - b
	if d < 0 {
		d = -d
	}
	d = min(d, benchRegions-d)
	return 3 + 7*d
}

// machineCmd fills c with the listing of machine number i.
func (w *benchWorld) machineCmd(c *Command, i int) {
	model, region := (i/benchRegions)%benchModels, i%benchRegions
	rtt := make([]uint16, benchRegions)
	for r := range rtt {
		rtt[r] = uint16(ringRTT(region, r) + w.r.IntN(7))
	}
	*c = Command{Kind: KindUpsertMachine, Now: w.now, Machine: benchMachineID(i), Provider: "provider-" + strconv.Itoa(i%5000),
		Model: w.cfg.Models[model], GPUs: 8, VRAMGiB: 80, Region: w.cfg.Regions[region],
		Price: w.basePrice[model] * int64(90+w.r.IntN(41)) / 100, ReliabilityBps: int64(9000 + w.r.IntN(1001)),
		Verified: true, RTTms: rtt}
}

func (w *benchWorld) build(apply func(*Command) error, b *testing.B) {
	var c Command
	for i := 0; i < benchMachines; i++ {
		w.machineCmd(&c, i)
		if err := apply(&c); err != nil {
			b.Fatal(err)
		}
	}
	w.next = benchMachines
}

type opKind uint8

const (
	opOther opKind = iota
	opMatch
	opInsert
)

// nextOp is the benchmark's op mix: 50 % heartbeats (1 in 10 with new
// RTTs), 20 % orders (price-first fill-or-kill, 10 % latency-first, 1 %
// any model, 20 % good-til-cancelled that often rest), 9 % confirmations,
// 9 % releases (freed GPUs trigger the resting-order sweep), 4 % listing
// changes (price moves: a book move), 4 % machines leaving and 4 % new
// machines (book inserts), and a tick every 1 000 ops (reservation
// expiries, offline checks). Time moves 1 ms every 100 ops.
func (w *benchWorld) nextOp(c *Command, i int) opKind {
	if i%100 == 0 {
		w.now++
	}
	if i%1000 == 999 {
		*c = Command{Kind: KindTick, Now: w.now}
		return opOther
	}
	x := w.r.IntN(100)
	switch {
	case x < 50:
		j := w.r.IntN(w.next)
		*c = Command{Kind: KindHeartbeat, Now: w.now, Machine: benchMachineID(j), Free: 0xFF, Healthy: true}
		if w.r.IntN(10) == 0 {
			// The machine's own region (machineCmd), so its RTTs keep
			// their ring. Parsed from "machine-N" ids this once was, and
			// any other id spelling moved every such machine to region 0
			// and scrambled the latency bands: p99 tripled.
			region := j % benchRegions
			// A fresh slice per command: commands are generated a batch
			// ahead, so a shared buffer would give every such heartbeat of
			// the batch the last one's RTTs (another region's ring) and
			// scramble the latency bands the index relies on.
			rtt := make([]uint16, benchRegions)
			for r := range rtt {
				rtt[r] = uint16(ringRTT(region, r) + w.r.IntN(7))
			}
			c.RTTms = rtt
		}
		return opOther
	case x < 70:
		w.orderN++
		model := w.r.IntN(benchModels)
		*c = Command{Kind: KindPlaceOrder, Now: w.now, Order: benchUUID(2, w.orderN), Buyer: "buyer-" + strconv.Itoa(w.r.IntN(10000)),
			Type: FillOrKill, Model: w.cfg.Models[model], GPUs: int64(1 + w.r.IntN(4)), VRAMGiB: 40,
			Region: w.cfg.Regions[w.r.IntN(benchRegions)], Price: w.basePrice[model] * int64(95+w.r.IntN(45)) / 100,
			MaxRTTms: int64(10 + w.r.IntN(70)), Hours: int64(1 + w.r.IntN(72))}
		switch y := w.r.IntN(100); {
		case y < 10:
			c.LatencyFirst = true
		case y < 11:
			c.Model = ""
		case y < 31:
			c.Type = GoodTilCancelled
			c.ExpiresAt = w.now + 60_000
			c.Price = w.basePrice[model] * int64(80+w.r.IntN(20)) / 100
		}
		return opMatch
	case x < 79, x < 88:
		if len(w.recent) == 0 {
			*c = Command{Kind: KindTick, Now: w.now}
			return opOther
		}
		j := w.r.IntN(len(w.recent))
		if x < 79 {
			*c = Command{Kind: KindConfirmLease, Now: w.now, Order: strings.Clone(w.recent[j])}
		} else {
			*c = Command{Kind: KindReleaseLease, Now: w.now, Order: strings.Clone(w.recent[j])}
			w.recent[j] = w.recent[len(w.recent)-1]
			w.recent = w.recent[:len(w.recent)-1]
		}
		return opOther
	case x < 92:
		w.machineCmd(c, w.r.IntN(w.next))
		return opInsert
	case x < 96:
		*c = Command{Kind: KindRemoveMachine, Now: w.now, Machine: benchMachineID(w.r.IntN(w.next))}
		return opOther
	default:
		w.machineCmd(c, w.next)
		w.next++
		return opInsert
	}
}

func (w *benchWorld) observe(evs []Event) {
	for _, e := range evs {
		if e.Kind == EvMatched {
			w.recent = append(w.recent, e.Order)
		}
	}
}

// profileRun starts a CPU profile of the op run alone when
// HIGHWAY_BENCH_CPUPROFILE names a file: -cpuprofile would also record
// the build of the million-offer book, which is most of the samples and
// none of what the figures measure.
func profileRun(b *testing.B) (stop func()) {
	path := os.Getenv("HIGHWAY_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }
}

func percentileUs(ns []int64, p int) float64 {
	if len(ns) == 0 {
		return 0
	}
	slices.Sort(ns)
	return float64(ns[(len(ns)-1)*p/100]) / 1e3
}

func vmRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkMarket builds the 1M-offer book and runs benchOps commands of
// the mix above on one goroutine: a third of them timed in bulk through
// ApplyBatch, a third in bulk through Apply (for the two ops/s figures), a
// third timed one by one for the latency percentiles.
func BenchmarkMarket(b *testing.B) {
	heap := benchHeap()
	for it := 0; it < b.N; it++ {
		w := newBenchWorld()
		e, err := NewEngine(w.cfg)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		w.build(func(c *Command) error { _, err := e.Apply(c); return err }, b)
		buildS := time.Since(start).Seconds()
		runtime.GC()
		var ms0 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		stopProfile := profileRun(b)

		const batch = 10_000
		cmds := make([]Command, batch)
		kinds := make([]opKind, batch)
		matchNs := make([]int64, 0, benchOps/4)
		insertNs := make([]int64, 0, benchOps/8)
		var total time.Duration
		byClass := map[string][]int64{}
		matched, failed := 0, 0
		// Batches take three roles in turn. A throughput batch runs its
		// commands back to back under one timer: a clock read costs a few
		// hundred ns on some VMs, so timing each command would charge the
		// clock to the engine. The first kind goes through ApplyBatch (how
		// a follower or a takeover replays the log), the second through
		// Apply one command at a time (how the leader applies what arrives).
		// A latency batch times each command alone, for the percentiles.
		// All draw from the same op stream, so the mix is the same; ops/s is
		// a role's commands over its time (which includes the few ns a
		// command of counting its events).
		count := func(evs []Event, err error) {
			if err != nil {
				failed++
			}
			for _, ev := range evs {
				if ev.Kind == EvMatched {
					matched++
				}
			}
			w.observe(evs)
		}
		var thrTime, oneTime time.Duration
		thrOps, oneOps := 0, 0
		for done := 0; done < benchOps; done += batch {
			for i := range cmds {
				kinds[i] = w.nextOp(&cmds[i], done+i)
			}
			switch (done / batch) % 3 {
			case 0:
				t0 := time.Now()
				e.ApplyBatch(cmds, func(_ int, evs []Event, err error) bool {
					count(evs, err)
					return true
				})
				d := time.Since(t0)
				thrTime += d
				total += d
				thrOps += batch
				continue
			case 1:
				t0 := time.Now()
				for i := range cmds {
					count(e.Apply(&cmds[i]))
				}
				d := time.Since(t0)
				oneTime += d
				total += d
				oneOps += batch
				continue
			}
			for i := range cmds {
				t0 := time.Now()
				evs, err := e.Apply(&cmds[i])
				d := time.Since(t0)
				total += d
				switch kinds[i] {
				case opMatch:
					matchNs = append(matchNs, d.Nanoseconds())
					cl := "fok"
					switch {
					case cmds[i].LatencyFirst:
						cl = "latency-first"
					case cmds[i].Model == "":
						cl = "any-model"
					case cmds[i].Type == GoodTilCancelled:
						cl = "gtc"
					}
					byClass[cl] = append(byClass[cl], d.Nanoseconds())
				case opInsert:
					insertNs = append(insertNs, d.Nanoseconds())
				}
				count(evs, err)
			}
		}
		stopProfile()
		var ms1 runtime.MemStats
		runtime.ReadMemStats(&ms1)

		// The search alone: the best-offer lookup for 100 000 orders of the
		// same mix on the book as the run left it, without reserving, so
		// the figure isolates the index from the bookkeeping around it.
		searchNs := make([]int64, 0, 100_000)
		var c Command
		for i := 0; len(searchNs) < cap(searchNs); i++ {
			if w.nextOp(&c, benchOps+i) != opMatch {
				continue
			}
			o := order{model: -1, region: e.regionIdx[c.Region], count: c.GPUs, minVRAM: c.VRAMGiB,
				maxPrice: c.Price, maxRTT: c.MaxRTTms, latencyFirst: c.LatencyFirst}
			if c.Model != "" {
				o.model = int32(e.modelIdx[c.Model])
			}
			t0 := time.Now()
			e.bestOffer(&o)
			searchNs = append(searchNs, time.Since(t0).Nanoseconds())
		}
		st := e.Stats()
		b.Logf("transparent huge pages: %s, %d MiB of heap advised %s; %d MiB on huge pages (the figures depend on it: docs/matching.md)", heap.Mode, heap.Advised>>20, heap.Why, hugeheap.Huge()>>20)
		b.Logf("build %.1fs; %d ops in %v (%d of them timed in bulk: %v): %d matched, %d failed (no capacity, vanished offers), final %+v; %d GCs, %v pause",
			buildS, benchOps, total, thrOps, thrTime, matched, failed, st, ms1.NumGC-ms0.NumGC, time.Duration(ms1.PauseTotalNs-ms0.PauseTotalNs))
		for _, cl := range []string{"fok", "latency-first", "any-model", "gtc"} {
			ns := byClass[cl]
			b.Logf("%s orders: %d, p50 %.2f µs, p99 %.2f µs, max %.2f µs", cl, len(ns), percentileUs(ns, 50), percentileUs(ns, 99), percentileUs(ns, 100))
		}
		b.ReportMetric(float64(thrOps)/thrTime.Seconds(), "BENCH:market_ops_per_s:ops/s")
		b.ReportMetric(float64(oneOps)/oneTime.Seconds(), "BENCH:market_apply_ops_per_s:ops/s")
		b.ReportMetric(percentileUs(matchNs, 99), "BENCH:market_match_p99_us:us")
		b.ReportMetric(percentileUs(matchNs, 50), "BENCH:market_match_p50_us:us")
		b.ReportMetric(percentileUs(searchNs, 99), "BENCH:market_search_p99_us:us")
		b.ReportMetric(percentileUs(insertNs, 99), "BENCH:market_insert_p99_us:us")
		b.ReportMetric(vmRSSMB(), "BENCH:market_rss_mb:MB")
		b.ReportMetric(float64(ms0.HeapInuse)/(1<<20), "BENCH:market_heap_mb:MB")
		b.ReportMetric(float64(ms1.PauseTotalNs-ms0.PauseTotalNs)/1e6, "BENCH:market_gc_pause_ms:ms")
		runtime.KeepAlive(e)
	}
}

// BenchmarkMarketNaive runs the reference matcher (a plain scan of every
// offer per order, every resting order retried after every command) on the
// same 1M-offer world and op mix, for the ratio. It is slow by design (a
// few commands a second: every order scans a million offers, and every
// command retries every resting order), so it runs the first commands of
// the mix for about 10 s.
func BenchmarkMarketNaive(b *testing.B) {
	for it := 0; it < b.N; it++ {
		w := newBenchWorld()
		n := newNaive(w.cfg)
		w.build(func(c *Command) error { _, err := n.Apply(c); return err }, b)
		var c Command
		var total time.Duration
		naiveOps := 0
		for i := 0; total < 10*time.Second; i++ {
			naiveOps++
			w.nextOp(&c, i)
			t0 := time.Now()
			evs, _ := n.Apply(&c)
			total += time.Since(t0)
			w.observe(evs)
		}
		b.ReportMetric(float64(naiveOps)/total.Seconds(), "BENCH:market_naive_ops_per_s:ops/s")
	}
}

// BenchmarkEngineRebuild measures what a takeover costs the engine at
// about 100 000 live GPUs (9 000 machines of 8 listed, growing to some
// 12 500 through the history): restoring the last snapshot
// and replaying the log's tail since it (snapshotTail commands, the
// broker's snapshot interval), each decoded from its log encoding as the
// broker does. For scale it also reports the snapshot's size and encode
// time, and a replay of the whole log the snapshot replaces.
func BenchmarkEngineRebuild(b *testing.B) {
	const machines, history, snapshotTail = 9_000, 200_000, 10_000
	for range b.N {
		w := newBenchWorld()
		e, err := NewEngine(w.cfg)
		if err != nil {
			b.Fatal(err)
		}
		var log [][]byte
		apply := func(c *Command) {
			evs, err := e.Apply(c)
			if err == nil {
				w.observe(evs)
			}
			log = append(log, MarshalCommand(nil, c))
		}
		var c Command
		for i := range machines {
			w.machineCmd(&c, i)
			apply(&c)
		}
		w.next = machines
		for i := range history {
			w.nextOp(&c, i)
			apply(&c)
		}
		t0 := time.Now()
		snap := e.Snapshot(nil)
		encode := time.Since(t0)
		var tail [][]byte
		for i := range snapshotTail {
			w.nextOp(&c, history+i)
			apply(&c)
			tail = append(tail, log[len(log)-1])
		}
		want := e.StateDigest()
		st := e.Stats()

		t0 = time.Now()
		r, err := Restore(w.cfg, snap)
		if err != nil {
			b.Fatal(err)
		}
		for _, raw := range tail {
			c, err := UnmarshalCommand(raw)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = r.Apply(&c)
		}
		rebuild := time.Since(t0)
		if r.StateDigest() != want {
			b.Fatal("the rebuilt engine differs from the original")
		}

		t0 = time.Now()
		full, _ := NewEngine(w.cfg)
		for _, raw := range log {
			c, err := UnmarshalCommand(raw)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = full.Apply(&c)
		}
		replay := time.Since(t0)
		if full.StateDigest() != want {
			b.Fatal("the replayed engine differs from the original")
		}
		gpus := 0
		for s := 0; s < e.nMachines; s++ {
			if m := e.mach(uint32(s)); m.alive {
				gpus += int(m.gpus)
			}
		}
		b.Logf("%d live GPUs on %d machines, %d leases, %d reservations, %d resting orders; log of %d commands", gpus, st.Machines, st.Leases, st.Reservations, st.Resting, len(log))
		b.ReportMetric(float64(rebuild.Microseconds())/1000, "BENCH:engine_rebuild_ms:ms")
		b.ReportMetric(float64(replay.Microseconds())/1000, "BENCH:engine_replay_full_log_ms:ms")
		b.ReportMetric(float64(encode.Microseconds())/1000, "BENCH:engine_snapshot_ms:ms")
		b.ReportMetric(float64(len(snap))/(1<<20), "BENCH:engine_snapshot_mb:MB")
		b.ReportMetric(float64(gpus), "BENCH:engine_rebuild_live_gpus:GPUs")
	}
}

// BenchmarkBigProviderChurn: one provider with 200 000 machines (a large
// datacenter under one account) removes and lists machines, 20 000 of
// each, so that removals take machines out of the middle of its machine
// list. market_big_provider_churn_us is the time of one removal and one
// new listing together; the provider's list then still names exactly
// its live machines.
func BenchmarkBigProviderChurn(b *testing.B) {
	const fleet, churn = 200_000, 20_000
	cfg := Config{Models: []string{"h100"}, Regions: []string{"eu"}, HeartbeatIntervalMs: 10_000, MissedBeats: 3, ReservationTTLms: 5_000}
	for it := 0; it < b.N; it++ {
		e, err := NewEngine(cfg)
		if err != nil {
			b.Fatal(err)
		}
		r := rand.New(rand.NewPCG(3, 4))
		listing := func(i int) Command {
			return Command{Kind: KindUpsertMachine, Machine: benchMachineID(i), Provider: "big-provider", Model: "h100", Region: "eu",
				GPUs: 8, VRAMGiB: 80, Price: 1_000_000 + int64(r.IntN(100_000)), ReliabilityBps: 9_900, Verified: true, RTTms: []uint16{3}}
		}
		live := make([]int, 0, fleet)
		for i := 0; i < fleet; i++ {
			c := listing(i)
			if _, err := e.Apply(&c); err != nil {
				b.Fatal(err)
			}
			live = append(live, i)
		}
		cmds := make([]Command, 0, 2*churn)
		for i := 0; i < churn; i++ {
			j := r.IntN(len(live))
			cmds = append(cmds, Command{Kind: KindRemoveMachine, Machine: benchMachineID(live[j])}, listing(fleet+i))
			live[j] = fleet + i
		}
		t0 := time.Now()
		for i := range cmds {
			if _, err := e.Apply(&cmds[i]); err != nil {
				b.Fatal(err)
			}
		}
		d := time.Since(t0)
		p := e.providers[e.providerIdx["big-provider"]]
		if len(p.machines) != fleet || e.machineIDs.n != fleet {
			b.Fatalf("provider lists %d machines, id table %d, want %d", len(p.machines), e.machineIDs.n, fleet)
		}
		for j, s := range p.machines {
			if m := e.mach(s); !m.alive || int(m.provPos) != j {
				b.Fatalf("slot %d at %d of the list: alive %v, provPos %d", s, j, m.alive, m.provPos)
			}
		}
		b.ReportMetric(float64(d.Microseconds())/churn, "BENCH:market_big_provider_churn_us:us")
	}
}
