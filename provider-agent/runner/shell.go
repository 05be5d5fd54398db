package runner

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/creack/pty"

	"github.com/highway-compute/highway/protocol"
)

// Shells: an interactive terminal into a running workload for its buyer
// (protocol/shell.go). The shell runs under a PTY of its own, as the
// workload's user, with the workload's environment and directory (exec
// driver) or inside its container (docker driver), and ends with the
// lease: stopping a lease kills its shells first.

// Sheller is a driver that can open a shell into a workload it runs.
type Sheller interface {
	// ShellCommand is the command line, environment and directory of an
	// interactive shell into spec's running workload.
	ShellCommand(spec Spec) (argv, env []string, dir string)
}

// ErrNoShell is returned for a lease whose workload is not running here
// or whose driver cannot open a shell.
var ErrNoShell = errors.New("no running workload to open a shell into")

type shell struct {
	cmd *exec.Cmd
	pty *os.File
	// reaped: Wait returned, so the pid may belong to someone else now.
	mu     sync.Mutex
	reaped bool
}

// Shell is an open terminal: read its output and write its input through
// PTY, resize it with Resize, and Wait for it to end.
type Shell struct {
	s *shell
	l *lease
}

// PTY is the terminal's controller side.
func (s *Shell) PTY() *os.File { return s.s.pty }

// Resize sets the terminal's size.
func (s *Shell) Resize(size protocol.ShellSize) error {
	return pty.Setsize(s.s.pty, &pty.Winsize{Cols: size.Cols, Rows: size.Rows})
}

// Wait waits for the shell to end and returns its exit status (-1 when
// killed). Its output may still be buffered in the terminal: read it to
// the end (an error), then Close.
func (s *Shell) Wait() int {
	_ = s.s.cmd.Wait()
	s.s.mu.Lock()
	// What the shell left running in its group goes with it (a job put
	// in the background must not outlive the session, or the lease);
	// right after the reap, before the pid can be reused.
	_ = syscall.Kill(-s.s.cmd.Process.Pid, syscall.SIGKILL)
	s.s.reaped = true
	s.s.mu.Unlock()
	s.l.mu.Lock()
	delete(s.l.shells, s.s)
	s.l.mu.Unlock()
	return s.s.cmd.ProcessState.ExitCode()
}

// Kill ends the shell (its whole session).
func (s *Shell) Kill() { s.s.kill() }

// Close kills what is left of the shell and closes its terminal.
func (s *Shell) Close() {
	s.s.kill()
	_ = s.s.pty.Close()
}

func (s *shell) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd.Process != nil && !s.reaped {
		// The shell leads its own session and process group (the PTY's
		// setsid): the group goes, whatever the buyer started in it.
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// OpenShell starts a shell into lease leaseID's running workload.
func (m *Manager) OpenShell(leaseID string, size protocol.ShellSize) (*Shell, error) {
	m.mu.Lock()
	l, ok := m.leases[leaseID]
	m.mu.Unlock()
	if !ok {
		return nil, ErrNoShell
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	sh, can := l.drv.(Sheller)
	if l.status.State != protocol.LeaseRunning || !can {
		return nil, ErrNoShell
	}
	argv, env, dir := sh.ShellCommand(l.spec)
	// Not tied to a context: the shell lives until it exits, the buyer
	// leaves or the lease stops, each of which kills it (kill).
	cmd := exec.Command(argv[0], argv[1:]...) //nolint:noctx // see above
	cmd.Env, cmd.Dir = env, dir
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: size.Cols, Rows: size.Rows})
	if err != nil {
		return nil, fmt.Errorf("start a shell: %w", err)
	}
	s := &shell{cmd: cmd, pty: f}
	if l.shells == nil {
		l.shells = map[*shell]struct{}{}
	}
	l.shells[s] = struct{}{}
	return &Shell{s: s, l: l}, nil
}

// endShells kills the lease's shells (it is stopping).
func (l *lease) endShells() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := range l.shells {
		s.kill()
	}
}

// ShellCommand implements Sheller: bash if the machine has it, else sh,
// interactive, in the workload's directory with its environment.
func (e *Exec) ShellCommand(spec Spec) (argv, env []string, dir string) {
	sh := "/bin/sh"
	if _, err := os.Stat("/bin/bash"); err == nil {
		sh = "/bin/bash"
	}
	env = append(ExecEnv(spec), "TERM=xterm-256color")
	if e.WorkRoot != "" {
		dir = filepath.Join(e.WorkRoot, safeName(spec.LeaseID))
		for i, kv := range env {
			if len(kv) > 5 && kv[:5] == "HOME=" {
				env[i] = "HOME=" + dir
			}
		}
	}
	return []string{sh, "-i"}, env, dir
}

// ShellCommand implements Sheller: sh inside the lease's container.
func (d *Docker) ShellCommand(spec Spec) (argv, env []string, dir string) {
	return []string{d.bin(), "exec", "-it", "-e", "TERM=xterm-256color", ContainerName(spec.LeaseID), "sh"}, dockerEnv(), ""
}
