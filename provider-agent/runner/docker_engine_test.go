package runner

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/provider-agent/runner/registrytest"
)

// These tests start real containers through a docker-compatible CLI:
// HIGHWAY_CONTAINER_ENGINE names it (CI: podman, with the containers.conf
// FIELD-NOTES.md describes), else "docker" and then "podman" are tried.
// Without a working engine they skip, saying so; with
// HIGHWAY_REQUIRE_CONTAINERS=1 (CI) they fail instead.

var (
	engineOnce  sync.Once
	engineBin   string
	engineImage string
	engineErr   string
)

// testEngine finds a working engine and the test image, or skips (fails
// in CI) saying why.
func testEngine(t *testing.T) (bin, image string) {
	t.Helper()
	findEngine()
	if engineBin == "" {
		if os.Getenv("HIGHWAY_REQUIRE_CONTAINERS") == "1" {
			t.Fatalf("a container engine is required (HIGHWAY_REQUIRE_CONTAINERS=1): %s", engineErr)
		}
		t.Skipf("skipping real-container test: %s; install podman, runc and busybox-static (see FIELD-NOTES.md) to run it", engineErr)
	}
	return engineBin, engineImage
}

// findEngine finds a working engine and builds the test image once: a
// rootfs of busybox-static, imported (no registry is reachable here).
func findEngine() {
	engineOnce.Do(func() {
		candidates := []string{"docker", "podman"}
		if e := os.Getenv("HIGHWAY_CONTAINER_ENGINE"); e != "" {
			candidates = []string{e}
		}
		engineImage = "localhost/highway-test/busybox:1"
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		bin, err := FindEngine(ctx, candidates, engineImage)
		if err != nil {
			engineErr = err.Error()
		}
		engineBin = bin
	})
}

// inspect reads one field of a container. Podman can print a new
// container's first output before inspect finds it, so it is retried
// for a few seconds.
func inspect(t *testing.T, bin, name, format string) string {
	t.Helper()
	var out []byte
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if out, err = exec.Command(bin, "inspect", "--type", "container", "--format", format, name).CombinedOutput(); err == nil {
			return strings.TrimSpace(string(out))
		}
	}
	t.Fatalf("inspect %s: %v: %s", name, err, out)
	return ""
}

func containerExists(bin, name string) bool {
	out, _ := exec.Command(bin, "ps", "-aq", "--filter", "name=^"+name+"$").Output()
	return strings.TrimSpace(string(out)) != ""
}

// TestDockerRunsARealContainer: the workload runs in a container, not on
// the host (another hostname, no host environment), its stdout and
// stderr reach the lease's log, and its exit code is reported.
func TestDockerRunsARealContainer(t *testing.T) {
	bin, image := testEngine(t)
	var lg logs
	m := NewManager([]Driver{&Docker{Binary: bin, Devices: DevicesNone}}, lg.sink, 2*time.Second, nil)
	defer m.StopAll()
	t.Setenv("HIGHWAY_SECRET_ON_HOST", "do-not-leak")
	err := m.Start(Spec{LeaseID: "ct-exit", GPUs: []string{"GPU-a"}, Workload: protocol.Workload{Image: image, Args: []string{"sh", "-c",
		`echo "hello from $HIGHWAY_LEASE_ID"; echo oops >&2; echo "host secret: [$HIGHWAY_SECRET_ON_HOST]"; echo "hostname: $(hostname)"; exit 3`}}}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := m.Wait(ctx, "ct-exit"); err != nil {
		t.Fatal(err)
	}
	ls := m.Leases()
	if ls[0].State != protocol.LeaseExited || ls[0].ExitCode == nil || *ls[0].ExitCode != 3 {
		t.Fatalf("lease %+v, want exited with 3", ls[0])
	}
	var stdout, stderr []string
	for _, ln := range lg.get("ct-exit") {
		if ln.Stream == protocol.StreamStderr {
			stderr = append(stderr, ln.Text)
		} else {
			stdout = append(stdout, ln.Text)
		}
	}
	host, _ := os.Hostname()
	got := strings.Join(stdout, "\n")
	if !strings.Contains(got, "hello from ct-exit") || !strings.Contains(got, "host secret: []") ||
		strings.Contains(got, "hostname: "+host+"\n") || !strings.Contains(strings.Join(stderr, "\n"), "oops") {
		t.Fatalf("stdout %q stderr %q (host %s)", stdout, stderr, host)
	}
	if containerExists(bin, ContainerName("ct-exit")) {
		t.Fatal("the exited container was left behind")
	}
}

// TestDockerLimitsAndStop: the limits are the container's (as inspect
// shows them), and a stop removes the container within the grace and a
// bound, even though the workload ignores SIGTERM (a shell as PID 1).
func TestDockerLimitsAndStop(t *testing.T) {
	bin, image := testEngine(t)
	var lg logs
	d := &Docker{Binary: bin, Devices: DevicesNone, Memory: "64m", CPUs: "1", PidsLimit: 64, ShmSize: "16m"}
	m := NewManager([]Driver{d}, lg.sink, 2*time.Second, nil)
	defer m.StopAll()
	if err := m.Start(Spec{LeaseID: "ct-stop", GPUs: []string{"GPU-a"}, Workload: protocol.Workload{Image: image,
		Args: []string{"sh", "-c", "echo started; sleep 300"}}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	lg.waitFor(t, "ct-stop", "started")
	name := ContainerName("ct-stop")
	if got := inspect(t, bin, name, "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.ShmSize}}"); got != "67108864 1000000000 64 16777216" {
		t.Fatalf("limits in inspect: %q", got)
	}
	if got := inspect(t, bin, name, "{{index .Config.Labels \""+LeaseLabel+"\"}}"); got != "ct-stop" {
		t.Fatalf("lease label %q", got)
	}
	start := time.Now()
	if err := m.Stop("ct-stop"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := m.Wait(ctx, "ct-stop"); err != nil {
		t.Fatal(err)
	}
	for containerExists(bin, name) {
		if time.Since(start) > 30*time.Second {
			t.Fatal("the container outlived its stop by 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("stopped and removed in %v (grace 2 s)", time.Since(start).Round(time.Millisecond))
}

// TestDockerCleanupRemovesLeftovers: the containers a crashed agent left
// (found by its owner label) are removed at its next start; another
// agent's on the same engine, and containers that are not Highway's, are
// not touched.
func TestDockerCleanupRemovesLeftovers(t *testing.T) {
	bin, image := testEngine(t)
	names := []string{"highway-leftover", "highway-other-agent", "not-highway"}
	remove := func() {
		for _, n := range names { // one by one: a missing one fails the whole command
			_ = exec.Command(bin, "kill", n).Run()
			_ = exec.Command(bin, "rm", "-f", n).Run()
		}
	}
	remove() // what an interrupted run left
	defer remove()
	for i, labels := range [][]string{
		{"--label", LeaseLabel + "=leftover", "--label", OwnerLabel + "=agent-x"},
		{"--label", LeaseLabel + "=other", "--label", OwnerLabel + "=agent-y"},
		nil,
	} {
		args := append(append([]string{"run", "-d", "--name", names[i]}, labels...), image, "sleep", "300")
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	n, err := (&Docker{Binary: bin, Owner: "agent-x"}).Cleanup(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("cleanup removed %d: %v", n, err)
	}
	if containerExists(bin, "highway-leftover") || !containerExists(bin, "highway-other-agent") || !containerExists(bin, "not-highway") {
		t.Fatal("cleanup removed the wrong containers")
	}
}

// BenchmarkContainerStart measures a lease's start as the buyer sees it:
// from the assignment reaching the runner to the workload's first log
// line, for an image named by tag in a registry and already cached by the
// engine (the usual case: the same image leased again). It includes what
// every start does: the manifest fetched (the tag resolved, the buyer's
// access proven), the cache checked, the container created and run
// (make bench: container_start_ms).
func BenchmarkContainerStart(b *testing.B) {
	findEngine()
	bin := engineBin
	if bin == "" {
		b.Skipf("no container engine: %s", engineErr)
	}
	reg := registrytest.New(b)
	img := registrytest.BusyboxImage(b)
	image, _ := reg.Push(b, "highway/bench", "v1", img)
	registrytest.Evict(b, bin, img)
	pull := &Puller{Binary: bin, AllowPrivate: true}
	if _, err := pull.Pull(context.Background(), image, nil, nil); err != nil { // warm the cache
		b.Fatal(err)
	}
	var total time.Duration
	for i := range b.N {
		var lg logs
		m := NewManager([]Driver{&Docker{Binary: bin, Devices: DevicesNone, Pull: pull}}, lg.sink, time.Second, nil)
		id := "bench-" + strconv.Itoa(i)
		start := time.Now()
		if err := m.Start(Spec{LeaseID: id, GPUs: []string{"GPU-a"}, Workload: protocol.Workload{Image: image, Args: []string{"echo", "first line"}}}, time.Time{}); err != nil {
			b.Fatal(err)
		}
		// The workload's own line, not the runner's notes about it.
		firstLine := func() bool {
			for _, ln := range lg.get(id) {
				if ln.Text == "first line" {
					return true
				}
			}
			return false
		}
		for !firstLine() {
			if time.Since(start) > time.Minute {
				b.Fatal("no output in a minute")
			}
			time.Sleep(time.Millisecond)
		}
		total += time.Since(start)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_ = m.Wait(ctx, id)
		cancel()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "BENCH:container_start_ms:ms")
}

// TestDockerRunsACommandInTheDefaultImage: a workload given as a command
// runs in a container of the default image, not on the host.
func TestDockerRunsACommandInTheDefaultImage(t *testing.T) {
	bin, image := testEngine(t)
	var lg logs
	m := NewManager([]Driver{&Docker{Binary: bin, Devices: DevicesNone, DefaultImage: image}, &Exec{}}, lg.sink, time.Second, nil)
	defer m.StopAll()
	if err := m.Start(Spec{LeaseID: "ct-cmd", GPUs: []string{"GPU-a"}, Workload: protocol.Workload{
		Command: `echo "in $(hostname) as $1"`, Args: []string{"arg-one"}}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Wait(ctx, "ct-cmd"); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	lines := lg.waitFor(t, "ct-cmd", "as arg-one")
	if ls := m.Leases(); ls[0].Driver != "docker" {
		t.Fatalf("ran with %q, want docker", ls[0].Driver)
	}
	for _, ln := range lines {
		if strings.Contains(ln.Text, "in "+host+" ") {
			t.Fatalf("the command ran on the host: %q", ln.Text)
		}
	}
}

// crashCLI kills a container's docker CLI as an agent crash (kill -9)
// would, leaving the container running.
func crashCLI(t *testing.T, p Process) {
	t.Helper()
	cp, ok := p.(*containerProc)
	if !ok {
		t.Fatalf("process %T is not a container's", p)
	}
	killGroup(cp.cmd.Process.Pid, true)
	_, _ = cp.proc.Wait()
}

// TestDockerAdoptsItsRunningContainer: an agent that crashed left its
// lease's container running; the restarted agent (same owner) keeps it
// at its survey, and when the lease is assigned again attaches to it
// instead of starting a second container on the same GPUs: the output
// after the restart streams, and the container's own exit code is
// reported. Another lease's leftover, which no assignment claims, is
// removed by Reap; an ended leftover is removed at the survey.
func TestDockerAdoptsItsRunningContainer(t *testing.T) {
	bin, image := testEngine(t)
	names := []string{ContainerName("adopt-me"), ContainerName("orphan"), ContainerName("ended")}
	remove := func() {
		for _, n := range names {
			_ = exec.Command(bin, "rm", "-f", n).Run()
		}
	}
	remove()
	defer remove()
	first := &Docker{Binary: bin, Devices: DevicesNone, Owner: "agent-a"}
	script := `i=0; while [ $i -lt 40 ]; do echo "tick $i"; i=$((i+1)); sleep 0.1; done; exit 7`
	var before logs
	p, err := first.Start(context.Background(), Spec{LeaseID: "adopt-me", Workload: protocol.Workload{Image: image, Args: []string{"sh", "-c", script}}},
		func(stream, text string) { before.sink("adopt-me", protocol.LogLine{Stream: stream, Text: text}) })
	if err != nil {
		t.Fatal(err)
	}
	before.waitFor(t, "adopt-me", "tick 1")
	orphan, err := first.Start(context.Background(), Spec{LeaseID: "orphan", Workload: protocol.Workload{Image: image, Args: []string{"sleep", "300"}}}, func(string, string) {})
	if err != nil {
		t.Fatal(err)
	}
	ended, err := first.Start(context.Background(), Spec{LeaseID: "ended", Workload: protocol.Workload{Image: image, Args: []string{"true"}}}, func(string, string) {})
	if err != nil {
		t.Fatal(err)
	}
	for !containerExists(bin, names[1]) {
		time.Sleep(50 * time.Millisecond)
	}
	// The agent dies: its CLIs go, the containers do not.
	crashCLI(t, p)
	crashCLI(t, orphan)
	crashCLI(t, ended)
	if !containerExists(bin, names[0]) || !containerExists(bin, names[2]) {
		t.Fatal("the crash took containers with it; nothing to adopt")
	}

	again := &Docker{Binary: bin, Devices: DevicesNone, Owner: "agent-a"}
	kept, removed, err := again.Survey(context.Background())
	if err != nil || kept != 2 || removed != 1 {
		t.Fatalf("survey: kept %d, removed %d, err %v; want 2 running kept, the ended one removed", kept, removed, err)
	}
	var lg logs
	m := NewManager([]Driver{again}, lg.sink, 2*time.Second, nil)
	defer m.StopAll()
	if err := m.Start(Spec{LeaseID: "adopt-me", Workload: protocol.Workload{Image: image, Args: []string{"sh", "-c", script}}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := m.Wait(ctx, "adopt-me"); err != nil {
		t.Fatal(err)
	}
	ls := m.Leases()
	if ls[0].ExitCode == nil || *ls[0].ExitCode != 7 {
		t.Fatalf("adopted lease %+v, want the container's exit code 7", ls[0])
	}
	var text []string
	for _, ln := range lg.get("adopt-me") {
		text = append(text, ln.Text)
	}
	got := strings.Join(text, "\n")
	if !strings.Contains(got, "adopted the container") || !strings.Contains(got, "tick 39") {
		t.Fatalf("adopted lease's output:\n%s", got)
	}
	if containerExists(bin, names[0]) {
		t.Fatal("the adopted container was left behind after it ended")
	}
	if n, err := again.Reap(context.Background()); err != nil || n != 1 {
		t.Fatalf("reap removed %d: %v, want the orphan", n, err)
	}
	if containerExists(bin, names[1]) {
		t.Fatal("the orphan outlived the reap")
	}
}
