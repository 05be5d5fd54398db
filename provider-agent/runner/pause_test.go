package runner

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/highway-compute/highway/procstate"
	"github.com/highway-compute/highway/protocol"
)

// state is a process's state letter from /proc (T: stopped).
func state(t *testing.T, pid int) string {
	t.Helper()
	st, _, err := procstate.Stat(pid)
	if err != nil {
		t.Fatal(err)
	}
	return string(st)
}

// TestPauseFreezesTheWorkload: a paused exec workload (its whole process
// group) makes no progress and says why in its log; resumed, it goes on;
// paused again and stopped, it still ends within its grace.
func TestPauseFreezesTheWorkload(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	var lg logs
	m := NewManager([]Driver{&Exec{}}, lg.sink, 2*time.Second, nil)
	if err := m.Pause("nope", "x"); !errors.Is(err, ErrNotPausable) {
		t.Fatalf("pause of an unknown lease: %v", err)
	}
	cmd := `echo "pid=$$"; i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.02; done`
	if err := m.Start(Spec{LeaseID: "l", GPUs: []string{"GPU-a"}, Workload: protocol.Workload{Command: cmd}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	lg.waitFor(t, "l", "tick 3")
	var pid int
	for _, ln := range lg.get("l") {
		if v, ok := strings.CutPrefix(ln.Text, "pid="); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	ticks := func() int {
		n := 0
		for _, ln := range lg.get("l") {
			if strings.HasPrefix(ln.Text, "tick ") {
				n++
			}
		}
		return n
	}
	if err := m.Pause("l", "proving epoch 0 on the GPUs"); err != nil {
		t.Fatal(err)
	}
	lg.waitFor(t, "l", "workload paused: proving epoch 0")
	time.Sleep(50 * time.Millisecond) // a line already written may still arrive
	before := ticks()
	time.Sleep(300 * time.Millisecond)
	if after := ticks(); after != before {
		t.Fatalf("paused workload ticked %d → %d", before, after)
	}
	if s := state(t, pid); s != "T" {
		t.Fatalf("paused shell in state %q", s)
	}
	if err := m.Resume("l"); err != nil {
		t.Fatal(err)
	}
	lg.waitFor(t, "l", "workload resumed")
	lg.waitFor(t, "l", "tick "+strconv.Itoa(before+3))

	if err := m.Pause("l", "again"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := m.Stop("l"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("a paused workload took %s to stop on SIGTERM (grace 2 s)", d)
	}
	if err := m.Resume("l"); !errors.Is(err, ErrNotPausable) {
		t.Fatalf("resume of a stopped lease: %v", err)
	}
}
