package protocol

// Forwarded ports: a lease's buyer reaches an HTTP port of the workload at
// a marketplace URL. The provider's machine accepts no inbound
// connection, so each TCP connection the marketplace needs into the
// workload is dialled back, like a shell: an ActionForward assignment
// through the long-poll names a tunnel session and a port, and the agent
// opens a WebSocket to PathTunnels+session, signed like every agent
// request. The agent connects to the port in the workload (its network
// namespace) and answers with one text frame: TunnelReady when connected,
// or it closes the socket with the reason. After that, binary frames
// carry the connection's bytes both ways, and either side closing ends it.

// PathTunnels: GET PathTunnels+<session id>, a signed WebSocket upgrade:
// the agent's end of a tunnel it was assigned.
const PathTunnels = Prefix + "/tunnels/"

// ActionForward asks the agent to connect to a port of a lease's workload
// and dial back (Forward set).
const ActionForward = "forward"

// TunnelReady is the agent's first frame once the workload's port
// accepted the connection.
const TunnelReady = "ready"

// ForwardRequest is an ActionForward assignment's tunnel.
type ForwardRequest struct {
	Session string `json:"session"`
	Port    uint16 `json:"port"`
}

// ValidPort says whether a workload port may be forwarded: any TCP port
// but 0.
func ValidPort(p int) bool { return p >= 1 && p <= 65535 }
