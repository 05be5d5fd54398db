package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/coder/websocket"
	"golang.org/x/term"

	"github.com/highway-compute/highway/protocol"
)

// shellStdin is what `highway shell` types from (tests replace it).
var shellStdin io.Reader = os.Stdin

// cliShell is `highway shell LEASE`: an interactive terminal into the
// lease's running workload, as the lease page's, over the API. On a
// terminal it goes raw (Ctrl-C goes to the workload, not to this
// program) and follows the window's size; from a pipe it types what it
// reads and ends the shell at the end of its input.
func cliShell(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, base, _ := cliFlags("shell", stderr)
	pos, err := parseCLI(fs, args, 1)
	if err != nil {
		return err
	}
	c, err := newCLI(ctx, *base, false, stdout)
	if err != nil {
		return err
	}
	if c.key == "" {
		return usageError{"set HIGHWAY_API_KEY to an API key from the Account page"}
	}
	size := protocol.ShellSize{Cols: 80, Rows: 24}
	in, isTerm := shellStdin.(*os.File)
	isTerm = isTerm && term.IsTerminal(int(in.Fd()))
	if isTerm {
		if w, h, err := term.GetSize(int(in.Fd())); err == nil && w > 0 && h > 0 {
			size = protocol.ShellSize{Cols: uint16(min(w, 1000)), Rows: uint16(min(h, 1000))}
		}
	}
	q := url.Values{"cols": {strconv.Itoa(int(size.Cols))}, "rows": {strconv.Itoa(int(size.Rows))}}
	u := strings.Replace(c.base, "http", "ws", 1) + "/api/v1/leases/" + url.PathEscape(pos[0]) + "/shell?" + q.Encode()
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + c.key}}})
	if resp != nil && resp.Body != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			var e struct{ Error apiError }
			if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error.Msg != "" {
				e.Error.status = resp.StatusCode
				return &e.Error
			}
			return fmt.Errorf("the marketplace refused the shell: %s", resp.Status)
		}
		return fmt.Errorf("cannot reach %s: %w", c.base, err)
	}
	defer func() { _ = conn.CloseNow() }()
	conn.SetReadLimit(1 << 20)
	if isTerm {
		old, err := term.MakeRaw(int(in.Fd()))
		if err == nil {
			defer func() { _ = term.Restore(int(in.Fd()), old) }()
		}
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				if w, h, err := term.GetSize(int(in.Fd())); err == nil {
					msg, _ := json.Marshal(protocol.ShellControl{Resize: &protocol.ShellSize{Cols: uint16(min(w, 1000)), Rows: uint16(min(h, 1000))}})
					_ = conn.Write(ctx, websocket.MessageText, msg)
				}
			}
		}()
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := shellStdin.Read(buf)
			if n > 0 && conn.Write(ctx, websocket.MessageBinary, buf[:n]) != nil {
				return
			}
			if err != nil {
				if !isTerm {
					_ = conn.Write(ctx, websocket.MessageBinary, []byte{4}) // end of input: Ctrl-D
				}
				return
			}
		}
	}()
	exit := 0
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			if s := websocket.CloseStatus(err); s != websocket.StatusNormalClosure && s != -1 {
				var ce websocket.CloseError
				if errors.As(err, &ce) && ce.Reason != "" {
					return fmt.Errorf("shell closed: %s", ce.Reason)
				}
			}
			break
		}
		if typ == websocket.MessageBinary {
			if _, err := stdout.Write(data); err != nil {
				return err
			}
		} else if c, err := protocol.DecodeShellControl(data); err == nil && c.Exit != nil {
			exit = *c.Exit
		}
	}
	if exit != 0 {
		return fmt.Errorf("the shell exited with status %d", exit)
	}
	return nil
}
