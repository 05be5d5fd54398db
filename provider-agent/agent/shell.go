package agent

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/coder/websocket"

	"github.com/highway-compute/highway/protocol"
)

// ShellDialer is an API that can open the agent's end of a shell session
// (*client.Client does).
type ShellDialer interface {
	DialShell(ctx context.Context, session string) (*websocket.Conn, error)
}

// shellDialTimeout bounds the dial back: the buyer's page is waiting.
const shellDialTimeout = 15 * time.Second

// shell opens a terminal into a lease's workload and relays it over a
// WebSocket the agent dials out to the marketplace: the machine accepts
// no inbound connection. It ends when either side does, or the lease
// stops (the runner kills the lease's shells).
func (a *Agent) shell(ctx context.Context, as protocol.Assignment) {
	d, ok := a.cfg.API.(ShellDialer)
	if !ok {
		a.log.Warn("shell requested but this API cannot dial back", "lease", as.LeaseID)
		return
	}
	req := as.Shell
	dctx, cancel := context.WithTimeout(ctx, shellDialTimeout)
	conn, err := d.DialShell(dctx, req.Session)
	cancel()
	if err != nil {
		a.log.Warn("shell: dial back", "lease", as.LeaseID, "session", req.Session, "err", err)
		return
	}
	defer func() { _ = conn.CloseNow() }()
	sh, err := a.runner.OpenShell(as.LeaseID, protocol.ShellSize{Cols: req.Cols, Rows: req.Rows})
	if err != nil {
		// The buyer reads why in the close reason.
		_ = conn.Close(websocket.StatusPolicyViolation, "no shell: "+err.Error())
		return
	}
	defer sh.Close()
	a.log.Info("shell opened", "lease", as.LeaseID, "session", req.Session)
	// The terminal's output, read in chunks as the PTY gives them.
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		buf := make([]byte, 32<<10)
		for {
			n, err := sh.PTY().Read(buf)
			if n > 0 {
				if werr := conn.Write(ctx, websocket.MessageBinary, buf[:n]); werr != nil {
					sh.Kill()
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	// The buyer's keystrokes and resizes.
	go func() {
		for {
			typ, data, err := conn.Read(ctx)
			if err != nil {
				sh.Kill()
				return
			}
			if typ == websocket.MessageBinary {
				if _, err := sh.PTY().Write(data); err != nil {
					sh.Kill()
					return
				}
				continue
			}
			if c, err := protocol.DecodeShellControl(data); err == nil && c.Resize != nil {
				_ = sh.Resize(*c.Resize)
			}
		}
	}()
	code := sh.Wait()
	// The rest of its output; a process it left behind holding the
	// terminal open does not keep the session.
	select {
	case <-outDone:
	case <-time.After(2 * time.Second):
		sh.Close()
		<-outDone
	}
	msg, _ := json.Marshal(protocol.ShellControl{Exit: &code})
	if err := conn.Write(ctx, websocket.MessageText, msg); err != nil && !errors.Is(err, context.Canceled) {
		a.log.Debug("shell: exit status not sent", "lease", as.LeaseID, "err", err)
	}
	_ = conn.Close(websocket.StatusNormalClosure, "shell exited")
	a.log.Info("shell closed", "lease", as.LeaseID, "session", req.Session, "exit", code)
}
