package runner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"github.com/highway-compute/highway/protocol"
)

// Forwarded ports: the agent connects to a port of a lease's running
// workload for a tunnel the buyer's request asked for (agent/forward.go).

// ErrNoPort is a lease whose workload's ports cannot be reached: it does
// not run, or its driver cannot say where.
var ErrNoPort = errors.New("the workload is not running")

// PortDialer is a driver that knows where a workload's ports listen.
type PortDialer interface {
	PortAddr(ctx context.Context, spec Spec, port uint16) (string, error)
}

// PortAddr implements PortDialer: an exec workload shares the machine's
// network, so its ports are the loopback's.
func (e *Exec) PortAddr(_ context.Context, _ Spec, port uint16) (string, error) {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), nil
}

// PortAddr implements PortDialer: the container's address on its network
// (publishing ports on the host would open them to anyone who reaches the
// machine). With --network host the container's ports are the host's.
func (d *Docker) PortAddr(ctx context.Context, spec Spec, port uint16) (string, error) {
	if d.Network == "host" {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), nil
	}
	out, err := exec.CommandContext(ctx, d.bin(), "inspect", "--format",
		"{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", ContainerName(spec.LeaseID)).Output()
	if err != nil {
		return "", fmt.Errorf("find the container's address: %w", err)
	}
	for _, ip := range strings.Fields(string(out)) {
		if net.ParseIP(ip) != nil {
			return net.JoinHostPort(ip, strconv.Itoa(int(port))), nil
		}
	}
	return "", errors.New("the container has no network address (rootless networks are not reachable from the agent)")
}

// DialPort connects to port of lease leaseID's running workload. The
// connection is closed when the lease stops.
func (m *Manager) DialPort(ctx context.Context, leaseID string, port uint16) (net.Conn, error) {
	if !protocol.ValidPort(int(port)) {
		return nil, fmt.Errorf("port %d is not a TCP port", port)
	}
	m.mu.Lock()
	l, ok := m.leases[leaseID]
	m.mu.Unlock()
	if !ok {
		return nil, ErrNoPort
	}
	l.mu.Lock()
	pd, can := l.drv.(PortDialer)
	spec, running := l.spec, l.status.State == protocol.LeaseRunning
	l.mu.Unlock()
	if !running || !can {
		return nil, ErrNoPort
	}
	addr, err := pd.PortAddr(ctx, spec, port)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			return nil, errors.New(strings.TrimPrefix(oe.Err.Error(), "connect: "))
		}
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.status.State != protocol.LeaseRunning {
		_ = c.Close()
		return nil, ErrNoPort
	}
	pc := &portConn{Conn: c, l: l}
	if l.conns == nil {
		l.conns = map[*portConn]struct{}{}
	}
	l.conns[pc] = struct{}{}
	return pc, nil
}

// portConn is a connection into a workload's port, forgotten by its
// lease once closed.
type portConn struct {
	net.Conn
	l    *lease
	once sync.Once
}

func (c *portConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return err
}

// endConns closes the lease's port connections (it is stopping).
func (l *lease) endConns() {
	l.mu.Lock()
	conns := make([]*portConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}
