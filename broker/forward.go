package broker

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
)

// Forwarded ports (protocol/forward.go). A buyer opens a forward for a
// port of a lease's running workload and reaches it at its own origin
// (the handlers serve <slug>.<ports domain>); every TCP connection the
// marketplace then needs into the workload is a tunnel the lease's agent
// dials back for, like a shell session. A forward ends when its buyer
// closes it or the lease ends.

// maxForwardsPerLease bounds the ports one lease forwards at once.
const maxForwardsPerLease = 8

// maxTunnelsPerLease bounds the connections open at once into one lease's
// forwarded ports: a page's worth of parallel requests and some
// WebSockets, not a flood the provider's link carries for free.
const maxTunnelsPerLease = 64

// maxDialsPerMinute caps new tunnels a lease opens a minute (10 a second
// sustained; a page's first burst of parallel requests fits many times).
const maxDialsPerMinute = 600

// OpenForward forwards port of lease leaseID's workload for its buyer. A
// port already forwarded is answered with its forward.
func (b *Broker) OpenForward(ctx context.Context, userID, leaseID string, port int) (*models.PortForward, error) {
	l, err := b.ownLease(ctx, userID, leaseID)
	if err != nil {
		return nil, err
	}
	if !protocol.ValidPort(port) {
		return nil, &highway.Error{Code: highway.EINVALID, Field: "port", Message: "A port is a number from 1 to 65535."}
	}
	if err := forwardable(l); err != nil {
		return nil, err
	}
	open, err := b.store.PortForwards(ctx, l.ID, 2*maxForwardsPerLease)
	if err != nil {
		return nil, err
	}
	n := 0
	for i := range open {
		if open[i].ClosedAt != nil {
			continue
		}
		if open[i].Port == port {
			return &open[i], nil
		}
		n++
	}
	if n >= maxForwardsPerLease {
		return nil, &highway.Error{Code: highway.ECONFLICT, Field: "port", Message: "This lease already forwards " + strconv.Itoa(maxForwardsPerLease) + " ports; close one first."}
	}
	f := &models.PortForward{ID: models.NewID(), LeaseID: l.ID, UserID: userID, Port: port, Slug: newSlug(), CreatedAt: b.now().UTC()}
	if err := b.store.CreatePortForward(ctx, f); err != nil {
		return nil, err
	}
	b.log.Info("port forwarded", "lease", l.ID, "port", port)
	return f, nil
}

// CloseForward ends the buyer's forward of port (its open tunnels too).
func (b *Broker) CloseForward(ctx context.Context, userID, leaseID string, port int) error {
	l, err := b.ownLease(ctx, userID, leaseID)
	if err != nil {
		return err
	}
	if !protocol.ValidPort(port) {
		// 0 would close every forward of the lease.
		return &highway.Error{Code: highway.EINVALID, Field: "port", Message: "A port is a number from 1 to 65535."}
	}
	slugs, err := b.store.ClosePortForwards(ctx, l.ID, port, "closed by the buyer")
	if err != nil {
		return err
	}
	if len(slugs) == 0 {
		return &highway.Error{Code: highway.ENOTFOUND, Field: "port", Message: "Port " + strconv.Itoa(port) + " is not forwarded."}
	}
	b.endTunnels(l.ID, port)
	return nil
}

// Forwards lists lease leaseID's forwards for its buyer.
func (b *Broker) Forwards(ctx context.Context, userID, leaseID string) ([]models.PortForward, error) {
	l, err := b.ownLease(ctx, userID, leaseID)
	if err != nil {
		return nil, err
	}
	return b.store.PortForwards(ctx, l.ID, 50)
}

// closeForwardsOf closes a lease's forwards as it ends.
func (b *Broker) closeForwardsOf(ctx context.Context, leaseID, reason string) {
	if _, err := b.store.ClosePortForwards(context.WithoutCancel(ctx), leaseID, 0, reason); err != nil {
		b.log.Warn("close forwarded ports", "lease", leaseID, "err", err)
	}
}

// forwardable says why lease l's workload cannot be reached, if it cannot.
func forwardable(l *models.Lease) error {
	switch {
	case l.Status != models.LeaseActive:
		return &highway.Error{Code: highway.ECONFLICT, Message: "Only an active lease forwards ports (this one is " + l.Status + ")."}
	case l.PreemptAt != nil:
		return &highway.Error{Code: highway.ECONFLICT, Message: "This lease was preempted; its workload is stopping."}
	case l.WorkloadStatus != protocol.LeaseRunning:
		return &highway.Error{Code: highway.ECONFLICT, Message: "The workload is not running (it is " + l.WorkloadStatus + ")."}
	}
	return nil
}

// newSlug is a forward's host label: 26 random base32 characters (130
// bits), lower case as DNS shows it. Unguessable, though the origin is
// not the protection: every request is authenticated.
func newSlug() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// TunnelError is why a connection into a forwarded port failed: the
// handlers answer it as a 502 or 504 with Message.
type TunnelError struct {
	Timeout bool
	Message string
}

func (e *TunnelError) Error() string { return e.Message }

// DialForward opens a connection into forward f's port: it asks the
// lease's agent to dial back, waits for it to connect to the port, and
// returns the tunnel as a net.Conn that ends with the lease.
func (b *Broker) DialForward(ctx context.Context, f *models.PortForward) (net.Conn, error) {
	l, err := b.store.LeaseByID(ctx, f.LeaseID)
	if err != nil {
		return nil, err
	}
	if err := forwardable(l); err != nil {
		return nil, err
	}
	// Each tunnel is an assignment stored for the agent: a workload that
	// closes every connection would otherwise turn each request into a
	// database write.
	if ok, retry := b.dials.Allow(l.ID, b.now()); !ok {
		return nil, &TunnelError{Message: fmt.Sprintf("This lease opened %d connections into its ports in the last minute; try again in %s.",
			maxDialsPerMinute, retry.Round(time.Second))}
	}
	id := models.NewID()
	done, end := context.WithCancel(context.Background())
	s := &ShellSession{ID: id, LeaseID: l.ID, UserID: f.UserID, agentID: l.AgentID, port: uint16(f.Port),
		Agent: make(chan *websocket.Conn, 1), Done: done.Done(), end: end}
	b.shells.mu.Lock()
	open := 0
	for _, o := range b.shells.sessions {
		if o.LeaseID == l.ID && o.port != 0 {
			open++
		}
	}
	if open < maxTunnelsPerLease {
		b.shells.sessions[id] = s
	}
	b.shells.mu.Unlock()
	if open >= maxTunnelsPerLease {
		end()
		return nil, &TunnelError{Message: "This lease has " + strconv.Itoa(maxTunnelsPerLease) + " connections open into its ports; try again when some close."}
	}
	forget := func() {
		end()
		b.shells.mu.Lock()
		delete(b.shells.sessions, id)
		b.shells.mu.Unlock()
	}
	// A close that ran between the caller's read of the forward and this
	// session's registration ended the tunnels it saw, not this one.
	if cur, err := b.store.PortForwardBySlug(ctx, f.Slug); err != nil || cur.ClosedAt != nil {
		forget()
		return nil, &TunnelError{Message: "This forward was closed."}
	}
	if _, err := b.mail.post(ctx, l.AgentID, protocol.Assignment{LeaseID: l.ID, Action: protocol.ActionForward,
		Forward: &protocol.ForwardRequest{Session: id, Port: uint16(f.Port)}}); err != nil {
		forget()
		return nil, err
	}
	wait := time.NewTimer(ShellDialBack)
	defer wait.Stop()
	var conn *websocket.Conn
	select {
	case conn = <-s.Agent:
	case <-wait.C:
		forget()
		return nil, &TunnelError{Timeout: true, Message: "The provider's agent did not answer within " + ShellDialBack.String() + "."}
	case <-s.Done:
		forget()
		return nil, &TunnelError{Message: "The lease ended."}
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	}
	// The agent's first frame says whether the port took the connection.
	rctx, cancel := context.WithTimeout(ctx, ShellDialBack)
	typ, msg, err := conn.Read(rctx)
	cancel()
	if err != nil || typ != websocket.MessageText || string(msg) != protocol.TunnelReady {
		_ = conn.CloseNow()
		forget()
		var ce websocket.CloseError
		if errors.As(err, &ce) && ce.Reason != "" {
			return nil, &TunnelError{Message: "Port " + strconv.Itoa(f.Port) + " of the workload: " + ce.Reason + "."}
		}
		return nil, &TunnelError{Message: fmt.Sprintf("The provider's agent could not connect to port %d of the workload.", f.Port)}
	}
	nc := &tunnelConn{Conn: websocket.NetConn(context.Background(), conn, websocket.MessageBinary), forget: forget}
	// The lease's end (or the forward's) ends the connection.
	go func() {
		<-s.Done
		_ = nc.Close()
	}()
	return nc, nil
}

// tunnelConn is a tunnel's connection; closing it lets its session go.
type tunnelConn struct {
	net.Conn
	once   sync.Once
	forget func()
}

func (c *tunnelConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.forget)
	return err
}

// endTunnels ends a lease's open tunnels into port (0: every port).
func (b *Broker) endTunnels(leaseID string, port int) {
	b.shells.mu.Lock()
	defer b.shells.mu.Unlock()
	for _, s := range b.shells.sessions {
		if s.LeaseID == leaseID && s.port != 0 && (port == 0 || int(s.port) == port) {
			s.end()
		}
	}
}
