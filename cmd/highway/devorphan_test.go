package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A chain an earlier highway dev left running is stopped at the next
// start when its pid file names it; a pid now used by another program, or
// long gone, is left alone and the stale file removed.
func TestStopOrphanChain(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "chain")
	pidFile := filepath.Join(dir, "chain.pid")

	// An orphan whose command line names this chain's home.
	orphan := exec.Command("sh", "-c", "sleep 600 # "+home)
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = orphan.Wait(); close(exited) }()
	// Between fork and exec the child's command line is still this test
	// binary's; under CI load stopOrphan once read it then (and left the
	// orphan alone, rightly). Wait for the shell's.
	waitFor(t, "the orphan's command line", 5*time.Second, func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", orphan.Process.Pid))
		return err == nil && strings.Contains(string(b), home)
	})
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(orphan.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	pid, err := stopOrphan(pidFile, home)
	if err != nil || pid != orphan.Process.Pid {
		t.Fatalf("stopOrphan = %d, %v", pid, err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the orphan still runs")
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Fatal("pid file left behind")
	}

	// Another program under the recorded pid: left alone.
	other := exec.Command("sleep", "600")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Process.Kill(); _ = other.Wait() }()
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(other.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	if pid, err := stopOrphan(pidFile, home); err != nil || pid != 0 {
		t.Fatalf("stopOrphan on another program = %d, %v", pid, err)
	}
	if err := syscall.Kill(other.Process.Pid, 0); err != nil {
		t.Fatalf("another program was stopped: %v", err)
	}
	// No pid file at all: nothing to do.
	if pid, err := stopOrphan(pidFile, home); err != nil || pid != 0 {
		t.Fatalf("stopOrphan without a pid file = %d, %v", pid, err)
	}
}
