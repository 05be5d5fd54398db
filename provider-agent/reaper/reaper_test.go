//go:build linux

package reaper

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/highway-compute/highway/procstate"
)

// The test binary plays the agent's PID 1: with helperCmd set it runs Run
// over `sh -c $helperCmd`, a subreaper, as the container's reaper would.
const helperCmd = "REAPER_TEST_CMD"

func TestMain(m *testing.M) {
	if c := os.Getenv(helperCmd); c != "" {
		os.Exit(Run([]string{"sh", "-c", c}))
	}
	os.Exit(m.Run())
}

// startReaper runs the helper and waits for its child's first line.
func startReaper(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperCmd+"="+script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	return cmd
}

// exitCode waits for the reaper and returns its exit code.
func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode()
}

// children lists the processes whose parent is pid, and how many of them
// are zombies.
func children(t *testing.T, pid int) (n, zombies int) {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		p, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		state, ppid, err := procstate.Stat(p)
		if err != nil || ppid != pid {
			continue // exited while listed, or not a child
		}
		n++
		if procstate.Exited(state) {
			zombies++
		}
	}
	return n, zombies
}

// TestOrphansAreReaped: the workload's children, orphaned when their
// parent exits, come to the reaper, and exit; none is left a zombie, and
// the reaper exits with the agent's code once the agent exits.
func TestOrphansAreReaped(t *testing.T) {
	// Each (… &) subshell starts a sleep and exits at once: the sleeps are
	// orphans, and end 0.1 s later.
	cmd := startReaper(t, `for i in 1 2 3 4 5; do (sleep 0.1 &); done; echo ready; sleep 1.5; exit 3`)
	time.Sleep(800 * time.Millisecond)
	n, zombies := children(t, cmd.Process.Pid)
	if zombies != 0 || n != 1 {
		t.Fatalf("the reaper has %d children, %d of them zombies; want only the agent, running", n, zombies)
	}
	if code := exitCode(t, cmd); code != 3 {
		t.Fatalf("reaper exited %d, want the agent's 3", code)
	}
}

// TestSignalsReachTheAgent: docker stop's SIGTERM goes to the agent, which
// exits in its own way; the reaper reports its code.
func TestSignalsReachTheAgent(t *testing.T) {
	cmd := startReaper(t, `trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done`)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 7 {
		t.Fatalf("reaper exited %d, want 7 from the agent's TERM trap", code)
	}
}

// TestKilledAgent: an agent killed by a signal exits the reaper as a
// shell reports it, 128+9.
func TestKilledAgent(t *testing.T) {
	cmd := startReaper(t, `echo ready; kill -KILL $$`)
	if code := exitCode(t, cmd); code != 137 {
		t.Fatalf("reaper exited %d, want 137", code)
	}
}

// TestNotNeededOffPID1: the agent supervises itself only as PID 1.
func TestNotNeededOffPID1(t *testing.T) {
	if Needed() {
		t.Fatal("a test process is not PID 1")
	}
}
