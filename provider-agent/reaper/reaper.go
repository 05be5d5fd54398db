//go:build unix

// Package reaper lets the agent run as PID 1, as it does in its container
// image (Dockerfile: the agent is the entrypoint, with no init).
//
// Why it is needed: a workload's processes run in their own process group,
// and a lease's end kills the group; the workload's children then outlive
// their parent for a moment and are re-parented to PID 1. The kernel keeps
// each one's exit status (a zombie, holding a pid) until PID 1 waits for
// it, and the agent, a Go program, waits only for the children os/exec
// started. Without this, every lease on a containerised agent left
// zombies behind, until the container's pid limit refused new workloads.
//
// What it does, as tini or `docker run --init` would: the process that
// finds itself PID 1 starts the agent again as its only child, with the
// same arguments, stdio and environment, forwards the signals an operator
// sends (SIGTERM from `docker stop` above all) to it, reaps every process
// that ends up its child, and exits with the agent's status. Run keeps
// nothing else: the agent, its leases and their processes live in the
// child as they would outside a container.
package reaper

import (
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// Needed reports whether this process should supervise the agent rather
// than be it: it is PID 1. (Its child, the agent, never is.)
func Needed() bool { return os.Getpid() == 1 }

// forwarded are the signals passed on to the agent: what docker stop,
// docker kill and a terminal send. SIGCHLD is the reaper's own.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// Run starts argv as the supervised child (stdio and environment shared),
// forwards signals to it, reaps every child this process gets, and
// returns the child's exit code (128+n for a child killed by signal n, as
// a shell reports it), or 1 if it cannot start it. A process that is not
// PID 1 only gets orphans if it is a child subreaper, so Run makes itself
// one: the tests run it that way, and on PID 1 it changes nothing.
func Run(argv []string) int {
	_ = setSubreaper()
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, append([]os.Signal{syscall.SIGCHLD}, forwarded...)...)
	defer signal.Stop(sigs)

	path, err := exec.LookPath(argv[0])
	if err == nil {
		// os.StartProcess, not exec.Cmd: the child is reaped below with
		// every other, never waited for through its handle.
		var p *os.Process
		p, err = os.StartProcess(path, argv, &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
		if err == nil {
			child := p.Pid
			_ = p.Release()
			return supervise(child, sigs)
		}
	}
	_, _ = os.Stderr.WriteString("provider-agent: cannot start the agent under its reaper: " + err.Error() + "\n")
	return 1
}

// supervise forwards signals to child and reaps until it has exited.
func supervise(child int, sigs <-chan os.Signal) int {
	for {
		if code, done := reap(child); done {
			return code
		}
		if s := <-sigs; s != syscall.SIGCHLD {
			_ = syscall.Kill(child, s.(syscall.Signal))
		}
	}
}

// reap waits for every child that has exited, without blocking. It
// reports the agent's exit code once the agent is among them. SIGCHLD
// signals merge (several exits, one delivery), so it loops until none is
// left to collect.
func reap(child int) (code int, done bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return code, done // none exited now (0), or no children (ECHILD)
		}
		if pid == child {
			done = true
			code = ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		}
	}
}
