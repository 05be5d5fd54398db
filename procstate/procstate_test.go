package procstate

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestZombieIsNotRunning: a child that has exited but is not yet reaped
// (we hold off Wait) answers kill(pid, 0) but is not running; once reaped
// it is gone. The parent's own pid runs.
func TestZombieIsNotRunning(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here: zombies cannot be told apart")
	}
	if !Running(os.Getpid()) {
		t.Fatal("this process is not running?")
	}
	cmd := exec.Command("sh", "-c", "exit 0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	for Running(pid) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if Running(pid) {
		t.Fatal("an exited, unreaped child still counts as running")
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		t.Fatal("the child should still exist as a zombie until Wait:", err)
	}
	_ = cmd.Wait()
	if Running(pid) {
		t.Fatal("a reaped child counts as running")
	}
	if Running(0) || Running(-1) {
		t.Fatal("pids 0 and -1 are not processes")
	}
}

func TestParseStat(t *testing.T) {
	for _, c := range []struct {
		in    string
		state byte
		ppid  int
		ok    bool
	}{
		{"12 (sh) S 1 12", 'S', 1, true},
		{"12 (a) b) Z 7 12", 'Z', 7, true},
		{"12 (we ird ) name) X 3 12", 'X', 3, true},
		{"garbage", 0, 0, false},
		{"12 (x)", 0, 0, false},
		{"12 (x) S", 0, 0, false},
		{"12 (x) S y", 0, 0, false},
	} {
		state, ppid, err := parseStat([]byte(c.in))
		if (err == nil) != c.ok || state != c.state || ppid != c.ppid {
			t.Errorf("parseStat(%q) = %c, %d, %v", c.in, state, ppid, err)
		}
	}
}
