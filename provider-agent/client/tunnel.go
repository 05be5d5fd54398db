package client

import (
	"context"

	"github.com/coder/websocket"

	"github.com/highway-compute/highway/protocol"
)

// DialTunnel opens the agent's end of a forwarded port's connection, as
// DialShell does a shell's.
func (c *Client) DialTunnel(ctx context.Context, session string) (*websocket.Conn, error) {
	conn, err := c.dialSigned(ctx, protocol.PathTunnels, "tunnel", session)
	if err != nil {
		return nil, err
	}
	// One frame is one read of the workload's socket.
	conn.SetReadLimit(1 << 20)
	return conn, nil
}
