package protocol

import "encoding/json"

// Shells: an interactive terminal into a lease's running workload, for its
// buyer. The provider's machine accepts no inbound connection: the
// marketplace asks the agent (an ActionShell assignment through the
// long-poll) to dial back, and the agent opens a WebSocket to
// PathShells+session, signed like every agent request. The marketplace
// pairs it with the buyer's WebSocket and relays frames both ways.
//
// Frames, the same on both legs: binary frames are terminal bytes (the
// buyer's keystrokes one way, the PTY's output the other); text frames
// are ShellControl JSON (a resize from the buyer, the exit status from the
// agent). Either side closing the socket ends the session.

// PathShells: GET PathShells+<session id>, a signed WebSocket upgrade:
// the agent's end of a shell session it was assigned.
const PathShells = Prefix + "/shells/"

// ActionShell asks the agent to open a shell into a lease's workload and
// dial back (Shell set).
const ActionShell = "shell"

// ShellRequest is an ActionShell assignment's session.
type ShellRequest struct {
	Session string `json:"session"`
	Cols    uint16 `json:"cols"`
	Rows    uint16 `json:"rows"`
}

// ShellControl is a text frame: a terminal resize, or the shell's exit.
type ShellControl struct {
	Resize *ShellSize `json:"resize,omitempty"`
	Exit   *int       `json:"exit,omitempty"`
}

// ShellSize is a terminal's size in character cells.
type ShellSize struct {
	Cols uint16 `json:"cols"`
	Rows uint16 `json:"rows"`
}

// Valid says whether a size is one a terminal can have (1..1000 each way).
func (s ShellSize) Valid() bool {
	return s.Cols >= 1 && s.Cols <= 1000 && s.Rows >= 1 && s.Rows <= 1000
}

// DecodeShellControl decodes a text frame; anything else is an error.
func DecodeShellControl(b []byte) (ShellControl, error) {
	var c ShellControl
	if len(b) > 256 {
		return c, fieldErr("control", "longer than 256 bytes")
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fieldErr("control", "not JSON")
	}
	if c.Resize != nil && !c.Resize.Valid() {
		return c, fieldErr("resize", "cols and rows must be 1..1000")
	}
	return c, nil
}
