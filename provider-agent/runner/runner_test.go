package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/highway-compute/highway/procstate"
	"github.com/highway-compute/highway/protocol"
)

type logs struct {
	mu    sync.Mutex
	lines map[string][]protocol.LogLine
}

func (l *logs) sink(id string, line protocol.LogLine) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lines == nil {
		l.lines = map[string][]protocol.LogLine{}
	}
	l.lines[id] = append(l.lines[id], line)
}

func (l *logs) get(id string) []protocol.LogLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]protocol.LogLine(nil), l.lines[id]...)
}

func (l *logs) waitFor(t *testing.T, id, text string) []protocol.LogLine {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, ln := range l.get(id) {
			if strings.Contains(ln.Text, text) {
				return l.get(id)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no line %q in %+v", text, l.get(id))
	return nil
}

// alive: a killed grandchild is an orphan, and its zombie waits for PID 1
// to reap it (seconds under load on the CI machines), so kill(pid, 0)
// alone would call it alive.
func alive(pid int) bool { return procstate.Running(pid) }

func TestExecStopKillsGroup(t *testing.T) {
	var lg logs
	m := NewManager([]Driver{&Exec{WorkRoot: t.TempDir()}}, lg.sink, 2*time.Second, nil)
	// The grandchild ignores SIGTERM, so only a group SIGKILL ends it.
	cmd := `echo hi; echo oops >&2; (trap '' TERM; sleep 30) & echo "child=$!"; echo "gpus=$CUDA_VISIBLE_DEVICES nv=$NVIDIA_VISIBLE_DEVICES x=$X"; wait`
	spec := Spec{LeaseID: "lease-1", GPUs: []string{"GPU-a", "GPU-b"}, Workload: protocol.Workload{Command: cmd, Env: map[string]string{"X": "1", "CUDA_VISIBLE_DEVICES": "all"}}}
	if err := m.Start(spec, time.Time{}); err != nil {
		t.Fatal(err)
	}
	lines := lg.waitFor(t, "lease-1", "gpus=")
	var child int
	for _, ln := range lines {
		if v, ok := strings.CutPrefix(ln.Text, "child="); ok {
			child, _ = strconv.Atoi(v)
		}
	}
	lines = lg.waitFor(t, "lease-1", "oops")
	joined := fmt.Sprint(lines)
	if !strings.Contains(joined, "gpus=GPU-a,GPU-b nv=GPU-a,GPU-b x=1") {
		t.Fatalf("env not applied (buyer must not widen GPUs): %s", joined)
	}
	for i, ln := range lines {
		if ln.Seq != uint64(i+1) {
			t.Fatalf("seq gap: %+v", lines)
		}
	}
	if child == 0 || !alive(child) {
		t.Fatalf("grandchild pid %d not running", child)
	}
	if busy := m.Busy(); busy["GPU-a"] != "lease-1" {
		t.Fatalf("busy %v", busy)
	}
	// A second lease cannot take a leased GPU.
	if err := m.Start(Spec{LeaseID: "lease-2", GPUs: []string{"GPU-b"}, Workload: protocol.Workload{Command: "true"}}, time.Time{}); !errors.Is(err, ErrGPUBusy) {
		t.Fatalf("double lease: %v", err)
	}
	// Starting the same lease again is a no-op.
	if err := m.Start(spec, time.Time{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := m.Stop("lease-1"); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 4*time.Second {
		t.Fatalf("stop took %v", time.Since(start))
	}
	deadline := time.Now().Add(2 * time.Second)
	for alive(child) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(child) {
		_ = syscall.Kill(child, syscall.SIGKILL)
		t.Fatal("grandchild survived the stop")
	}
	ls := m.Leases()
	if len(ls) != 2 || ls[0].State != protocol.LeaseStopped || ls[0].ExitCode == nil || ls[0].Driver != "exec" {
		t.Fatalf("leases %+v", ls)
	}
	if ls[1].State != protocol.LeaseFailed || !strings.Contains(ls[1].Error, "GPU already leased") {
		t.Fatalf("failed lease %+v", ls[1])
	}
	if len(m.Busy()) != 0 {
		t.Fatal("GPUs still busy after stop")
	}
	if err := m.Stop("lease-1"); err != nil { // repeated stop
		t.Fatal(err)
	}
	m.Forget(ls)
	if len(m.Leases()) != 0 {
		t.Fatalf("finished leases not forgotten: %+v", m.Leases())
	}
}

func TestExecExitAndEnd(t *testing.T) {
	var lg logs
	m := NewManager([]Driver{&Exec{}}, lg.sink, time.Second, nil)
	if err := m.Start(Spec{LeaseID: "l-exit", GPUs: []string{"GPU-a"}, Workload: protocol.Workload{Command: `printf 'a\nb'; exit 3`}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Wait(ctx, "l-exit"); err != nil {
		t.Fatal(err)
	}
	ls := m.Leases()
	if ls[0].State != protocol.LeaseExited || *ls[0].ExitCode != 3 {
		t.Fatalf("%+v", ls[0])
	}
	var out []string
	for _, ln := range lg.get("l-exit") {
		if ln.Stream == protocol.StreamStdout {
			out = append(out, ln.Text)
		}
	}
	if strings.Join(out, "|") != "a|b" {
		t.Fatalf("stdout %q", out)
	}
	// The lease's end time stops it without a stop assignment.
	if err := m.Start(Spec{LeaseID: "l-end", GPUs: []string{"GPU-a"}, Workload: protocol.Workload{Command: "sleep 30"}}, time.Now().Add(100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := m.Wait(ctx, "l-end"); err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Leases() {
		if l.LeaseID == "l-end" && l.State != protocol.LeaseStopped {
			t.Fatalf("%+v", l)
		}
	}
}

// TestExecLogsInSequence: a workload writing to stdout and stderr at once
// reaches the sink in sequence order, every line numbered once.
func TestExecLogsInSequence(t *testing.T) {
	var mu sync.Mutex
	var seqs []uint64
	sink := func(_ string, l protocol.LogLine) {
		mu.Lock()
		seqs = append(seqs, l.Seq)
		mu.Unlock()
	}
	m := NewManager([]Driver{&Exec{}}, sink, time.Second, nil)
	cmd := `for i in $(seq 300); do echo out$i; echo err$i >&2; done`
	if err := m.Start(Spec{LeaseID: "l-seq", GPUs: []string{"GPU-a"}, Workload: protocol.Workload{Command: cmd}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.Wait(ctx, "l-seq"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seqs) < 600 {
		t.Fatalf("%d lines, want at least 600", len(seqs))
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("line %d reached the sink with seq %d", i+1, s)
		}
	}
}

func TestNoDriver(t *testing.T) {
	m := NewManager([]Driver{&Docker{Binary: "/nonexistent/docker"}}, nil, time.Second, nil)
	err := m.Start(Spec{LeaseID: "l", GPUs: []string{"GPU-a"}, Workload: protocol.Workload{Command: "echo"}}, time.Time{})
	if !errors.Is(err, ErrNoDriver) || !strings.Contains(err.Error(), "--allow-exec") {
		t.Fatalf("%v", err)
	}
	// A driver whose binary is missing fails the lease cleanly (after
	// its preparation, in the background).
	if err := m.Start(Spec{LeaseID: "l2", GPUs: []string{"GPU-a"}, Workload: protocol.Workload{Image: "busybox"}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Wait(ctx, "l2"); err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Leases() {
		if l.State != protocol.LeaseFailed {
			t.Fatalf("%+v", l)
		}
	}
	if len(m.Busy()) != 0 {
		t.Fatal("failed lease holds GPUs")
	}
	m.StopAll()
}

func TestDockerArgs(t *testing.T) {
	d := &Docker{Memory: "64g", CPUs: "16", PidsLimit: 4096, ShmSize: "8g"}
	spec := Spec{LeaseID: "lease/9", GPUs: []string{"GPU-a", "GPU-b"}, Workload: protocol.Workload{
		Image: "nvcr.io/nvidia/pytorch:24.05-py3", Args: []string{"python", "train.py"},
		Env: map[string]string{"B": "2", "A": "1", "NVIDIA_VISIBLE_DEVICES": "all"},
	}}
	got := strings.Join(d.Args(spec), " ")
	want := `run --pull never --name highway-lease_9 --label highway.lease=lease_9 --gpus "device=GPU-a,GPU-b" --security-opt no-new-privileges --cap-drop ALL --network bridge --memory 64g --memory-swap 64g --cpus 16 --pids-limit 4096 --shm-size 8g -e A=1 -e B=2 -e HIGHWAY_LEASE_ID=lease/9 nvcr.io/nvidia/pytorch:24.05-py3 python train.py`
	if got != want {
		t.Fatalf("docker args\n got %s\nwant %s", got, want)
	}
	if !d.Accepts(spec.Workload) || (&Exec{}).Accepts(spec.Workload) {
		t.Fatal("Accepts")
	}
}

func TestSafeNameAndEnv(t *testing.T) {
	if safeName("../x y") != "_x_y" || safeName("") != "lease" {
		t.Fatalf("%q %q", safeName("../x y"), safeName(""))
	}
	env := strings.Join(ExecEnv(Spec{LeaseID: "l", GPUs: []string{"g"}}), " ")
	if strings.Contains(env, os.Getenv("HOME")+" ") && os.Getenv("HOME") != "/tmp" {
		t.Fatalf("agent HOME leaked: %s", env)
	}
}

// TestStartAgainExtends: a second start with a later end moves the end (an
// extension); one with an earlier end, as a late copy of the first start
// would carry, changes nothing.
func TestStartAgainExtends(t *testing.T) {
	var lg logs
	m := NewManager([]Driver{&Exec{}}, lg.sink, time.Second, nil)
	spec := Spec{LeaseID: "l-ext", GPUs: []string{"GPU-a"}, Workload: protocol.Workload{Command: "sleep 30"}}
	start := time.Now()
	if err := m.Start(spec, start.Add(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(spec, start.Add(50*time.Millisecond)); err != nil { // a late copy
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	for _, l := range m.Leases() {
		if l.LeaseID == "l-ext" && l.State != protocol.LeaseRunning {
			t.Fatalf("a late copy of the start cut the lease short: %+v", l)
		}
	}
	if err := m.Start(spec, start.Add(1200*time.Millisecond)); err != nil { // the extension
		t.Fatal(err)
	}
	lg.waitFor(t, "l-ext", "lease extended")
	if ends, gpus, ok := m.Live("l-ext"); !ok || !ends.Equal(start.Add(1200*time.Millisecond)) || len(gpus) != 1 {
		t.Fatalf("Live = %v %v %v, want the extended end", ends, gpus, ok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Wait(ctx, "l-ext"); err != nil {
		t.Fatal(err)
	}
	if ran := time.Since(start); ran < 1200*time.Millisecond {
		t.Fatalf("stopped after %v, before the extended end", ran)
	}
	for _, l := range m.Leases() {
		if l.LeaseID == "l-ext" && l.State != protocol.LeaseStopped {
			t.Fatalf("%+v", l)
		}
	}
	// Ended: no longer live, and a start that comes now (an extension
	// that landed too late) says so rather than pretending to extend.
	if _, _, ok := m.Live("l-ext"); ok {
		t.Fatal("a stopped lease is live")
	}
	if err := m.Start(spec, time.Now().Add(time.Hour)); !errors.Is(err, ErrEnded) {
		t.Fatalf("start of an ended lease: %v, want ErrEnded", err)
	}
}
