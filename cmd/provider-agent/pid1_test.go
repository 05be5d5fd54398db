package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// asAgent makes the test binary the agent's main, for running it as PID 1.
const asAgent = "HIGHWAY_TEST_AS_AGENT"

func TestMain(m *testing.M) {
	if os.Getenv(asAgent) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestAgentAsPID1 runs the agent as PID 1 of a new pid namespace, as its
// container does: it supervises itself (provider-agent/reaper) and the
// command's output and exit code come through. The reaping itself is
// tested in the reaper package.
func TestAgentAsPID1(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and unshare(1) for a pid namespace; provider-agent/reaper's tests cover the reaper without one")
	}
	if err := exec.Command(unshare, "--pid", "--fork", "--mount-proc", "true").Run(); err != nil {
		t.Skipf("this machine refuses a new pid namespace (%v); provider-agent/reaper's tests cover the reaper without one", err)
	}
	run := func(args ...string) (string, int) {
		cmd := exec.Command(unshare, append([]string{"--pid", "--fork", "--mount-proc", os.Args[0]}, args...)...)
		cmd.Env = append(os.Environ(), asAgent+"=1")
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	if out, code := run("version"); code != 0 || !strings.HasPrefix(out, "provider-agent ") {
		t.Fatalf("version as PID 1: exit %d, %q", code, out)
	}
	if out, code := run("bogus"); code != 2 || !strings.Contains(out, `unknown command "bogus"`) {
		t.Fatalf("a usage error as PID 1: exit %d, %q", code, out)
	}
}
