package agent

import (
	"context"
	"io"
	"net"

	"github.com/coder/websocket"

	"github.com/highway-compute/highway/protocol"
)

// TunnelDialer is an API that can open the agent's end of a forwarded
// port's connection (*client.Client does).
type TunnelDialer interface {
	DialTunnel(ctx context.Context, session string) (*websocket.Conn, error)
}

// forward connects to a port of a lease's workload for one connection the
// marketplace asked for, and relays it over a WebSocket the agent dials
// out (protocol/forward.go): the machine accepts no inbound connection.
func (a *Agent) forward(ctx context.Context, as protocol.Assignment) {
	d, ok := a.cfg.API.(TunnelDialer)
	if !ok {
		a.log.Warn("port forward requested but this API cannot dial back", "lease", as.LeaseID)
		return
	}
	req := as.Forward
	dctx, cancel := context.WithTimeout(ctx, shellDialTimeout)
	defer cancel()
	// The port first: a refusal is told to the marketplace as the close
	// reason, on the socket it waits for either way.
	pc, perr := a.runner.DialPort(dctx, as.LeaseID, req.Port)
	conn, err := d.DialTunnel(dctx, req.Session)
	if err != nil {
		a.log.Warn("port forward: dial back", "lease", as.LeaseID, "session", req.Session, "err", err)
		if pc != nil {
			_ = pc.Close()
		}
		return
	}
	if perr != nil {
		_ = conn.Close(websocket.StatusPolicyViolation, perr.Error())
		return
	}
	defer func() { _ = pc.Close() }()
	if err := conn.Write(ctx, websocket.MessageText, []byte(protocol.TunnelReady)); err != nil {
		_ = conn.CloseNow()
		return
	}
	nc := websocket.NetConn(ctx, conn, websocket.MessageBinary)
	defer func() { _ = nc.Close() }()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// One side is done: half-close where TCP can, so a response still
		// flows back after the request's end, else close.
		if tc, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
		} else {
			_ = dst.Close()
		}
		done <- struct{}{}
	}
	go pipe(nc, pc)
	go pipe(pc, nc)
	<-done
	<-done
}
