package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/highway-compute/highway/protocol"
)

// defaultPath is the PATH a workload gets: the agent's own environment is
// never passed through (it may hold the enrollment token or proxy
// credentials).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Exec runs a workload's command with /bin/sh on the host. It is unsafe
// for untrusted buyers: the command runs as the agent's user with the
// host's filesystem and network. The agent enables it only with
// --allow-exec.
type Exec struct {
	// Shell runs the command; default /bin/sh.
	Shell string
	// WorkRoot, if set, gets one 0700 working directory per lease.
	WorkRoot string
}

// Name implements Driver.
func (e *Exec) Name() string { return "exec" }

// Accepts implements Driver: commands only.
func (e *Exec) Accepts(w protocol.Workload) bool { return w.Command != "" }

// Start implements Driver. The command runs as `sh -c COMMAND sh ARGS...`
// in a new process group, with a minimal environment plus the workload's
// variables and the leased GPUs in CUDA_VISIBLE_DEVICES and
// NVIDIA_VISIBLE_DEVICES (set last, so a buyer cannot widen them).
func (e *Exec) Start(ctx context.Context, spec Spec, out Output) (Process, error) {
	shell := e.Shell
	if shell == "" {
		shell = "/bin/sh"
	}
	argv := append([]string{shell, "-c", spec.Workload.Command, "sh"}, spec.Workload.Args...)
	dir := ""
	env := ExecEnv(spec)
	if e.WorkRoot != "" {
		dir = filepath.Join(e.WorkRoot, safeName(spec.LeaseID))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("exec: work directory: %w", err)
		}
		// HOME is the lease's own directory too, so dot-files a workload
		// writes stay with it.
		for i, kv := range env {
			if strings.HasPrefix(kv, "HOME=") {
				env[i] = "HOME=" + dir
			}
		}
	}
	return startProcess(ctx, argv, env, dir, out, nil)
}

// ExecEnv is the environment an exec workload gets.
func ExecEnv(spec Spec) []string {
	devices := strings.Join(spec.GPUs, ",")
	env := map[string]string{"PATH": defaultPath, "HOME": "/tmp", "LANG": "C.UTF-8"}
	for k, v := range spec.Workload.Env {
		env[k] = v
	}
	env["CUDA_VISIBLE_DEVICES"] = devices
	env["NVIDIA_VISIBLE_DEVICES"] = devices
	env["HIGHWAY_LEASE_ID"] = spec.LeaseID
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// safeName keeps [A-Za-z0-9_.-] of a lease id, for paths and names.
func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '_' || r == '-' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := strings.TrimLeft(b.String(), ".-")
	if name == "" {
		name = "lease"
	}
	return name
}

// proc is a started process group.
type proc struct {
	cmd     *exec.Cmd
	readers sync.WaitGroup
	done    chan struct{}
	code    int
	err     error
	// onStop runs before the process group is signalled (the docker
	// driver removes the container there).
	onStop func(grace time.Duration)
}

func startProcess(ctx context.Context, argv, env []string, dir string, out Output, onStop func(time.Duration)) (*proc, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	// The process outlives the Start call: it is stopped by killing its
	// process group (see proc.Stop), never by a context. WithoutCancel
	// keeps ctx's values but can never be cancelled, so exec never kills
	// the process on its own.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = env, dir
	cmd.Stdin = nil
	setProcessGroup(cmd)
	// Plain os.Pipe write ends go straight to the child, so no copying
	// goroutine sits inside cmd.Wait; our readers see EOF when every
	// process in the group holding the pipe has exited.
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		_ = outR.Close()
		_ = outW.Close()
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	if err := cmd.Start(); err != nil {
		for _, f := range []*os.File{outR, outW, errR, errW} {
			_ = f.Close()
		}
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	_ = outW.Close()
	_ = errW.Close()
	p := &proc{cmd: cmd, done: make(chan struct{}), onStop: onStop}
	p.readers.Add(2)
	go p.read(outR, protocol.StreamStdout, out)
	go p.read(errR, protocol.StreamStderr, out)
	go func() {
		err := cmd.Wait()
		// The leader is gone; kill whatever it left in its group, so no
		// orphan keeps a GPU (or our pipes) after the lease.
		killGroup(cmd.Process.Pid, true)
		p.readers.Wait()
		p.code = -1
		if cmd.ProcessState != nil {
			p.code = cmd.ProcessState.ExitCode()
		}
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			p.err = err
		}
		close(p.done)
	}()
	return p, nil
}

// maxLine splits longer lines: the protocol caps a line at 16 KiB.
const maxLine = 8 << 10

func (p *proc) read(r io.ReadCloser, stream string, out Output) {
	defer p.readers.Done()
	defer r.Close()
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			text := strings.TrimRight(string(line), "\r\n")
			if !utf8.ValidString(text) {
				text = strings.ToValidUTF8(text, "\uFFFD")
			}
			out(stream, text)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// Wait implements Process.
func (p *proc) Wait() (int, error) {
	<-p.done
	return p.code, p.err
}

// Stop implements Process: SIGTERM to the group, SIGKILL after grace.
func (p *proc) Stop(grace time.Duration) error {
	if p.onStop != nil {
		p.onStop(grace)
	}
	killGroup(p.cmd.Process.Pid, false)
	// A workload paused for a proof window gets its SIGTERM only once it
	// runs again: continue it, so it can still exit in its grace.
	_ = signalGroup(p.cmd.Process.Pid, sigCont)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	killGroup(p.cmd.Process.Pid, true)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("process group %d did not exit after SIGKILL", p.cmd.Process.Pid)
	}
}
