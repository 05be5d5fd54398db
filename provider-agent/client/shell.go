package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/coder/websocket"

	"github.com/highway-compute/highway/protocol"
)

// DialShell opens the agent's end of shell session id: a WebSocket to the
// marketplace, signed like every agent request (the upgrade is a GET with
// an empty body).
func (c *Client) DialShell(ctx context.Context, session string) (*websocket.Conn, error) {
	conn, err := c.dialSigned(ctx, protocol.PathShells, "shell", session)
	if err != nil {
		return nil, err
	}
	// Terminal output can come in bursts larger than the default 32 KiB
	// read limit the other way; keystrokes and controls are small.
	conn.SetReadLimit(64 << 10)
	return conn, nil
}

// dialSigned opens a signed WebSocket to path+session.
func (c *Client) dialSigned(ctx context.Context, path, what, session string) (*websocket.Conn, error) {
	if c.Signer == nil {
		return nil, errors.New("not enrolled: no signing key")
	}
	u := strings.TrimRight(c.BaseURL, "/") + path + session
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, session, err)
	}
	if err := c.Signer.Sign(req); err != nil {
		return nil, err
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	hc := c.HTTP
	if hc == nil {
		hc = sharedHTTP()
	}
	conn, resp, err := websocket.Dial(ctx, strings.Replace(u, "http", "ws", 1), &websocket.DialOptions{HTTPClient: hc, HTTPHeader: req.Header})
	if resp != nil && resp.Body != nil {
		defer resp.Body.Close() // a refusal's body; an upgrade's is the connection's, closed with it
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%s %s: %s: %w", what, session, resp.Status, err)
		}
		return nil, fmt.Errorf("%s %s: %w", what, session, err)
	}
	return conn, nil
}
