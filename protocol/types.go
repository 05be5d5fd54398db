package protocol

import (
	"fmt"
	"log/slog"

	"github.com/highway-compute/highway/poc"
)

// Routes of the agent API, relative to the marketplace's base URL. They are
// constants so the server's route table and the client cannot drift apart.
const (
	// Prefix is the base path of every agent route; bump it (v2) for an
	// incompatible change instead of changing a type's meaning.
	Prefix = "/api/agent/v1"
	// PathRegister: POST RegisterRequest → 201 RegisterResponse. Unsigned:
	// the enrollment token in the body is the credential.
	PathRegister = Prefix + "/register"
	// PathHeartbeat: POST Heartbeat → 200 HeartbeatResponse.
	PathHeartbeat = Prefix + "/heartbeat"
	// PathAssignments: GET ?after=<last assignment id>&wait=<seconds> →
	// 200 AssignmentsResponse (long-poll; an empty response after wait
	// seconds is normal).
	PathAssignments = Prefix + "/assignments"
	// PathLogs: POST LogBatch → 204.
	PathLogs = Prefix + "/logs"
	// PathQuotes: POST QuoteResponse → 204 (the answer to a QuoteRequest
	// delivered through PathAssignments).
	PathQuotes = Prefix + "/quotes"
	// PathVerifications: POST VerificationResponse → 204 (the answer to a
	// verify assignment: the machine's listing PoC).
	PathVerifications = Prefix + "/verifications"
)

// Version is the protocol version the agent sends in User-Agent and
// RegisterRequest.ProtocolVersion.
const Version = 1

// RegisterRequest enrolls a new agent. The token is the one-time enrollment
// token the provider created in the console; the public key is the agent's
// freshly generated ed25519 key, which signs every later request. The private
// key never leaves the machine.
type RegisterRequest struct {
	Token           string `json:"token"`
	PublicKey       string `json:"public_key"` // base64 (std) ed25519 public key, 32 bytes
	Hostname        string `json:"hostname"`
	AgentVersion    string `json:"agent_version"`
	ProtocolVersion int    `json:"protocol_version"`
	DriverVersion   string `json:"driver_version,omitempty"`
	CUDAVersion     string `json:"cuda_version,omitempty"`
	Simulated       bool   `json:"simulated"`
	GPUs            []GPU  `json:"gpus"`
}

// Region is a marketplace region and the TCP endpoint the agent measures its
// round-trip time to.
type Region struct {
	ID string `json:"id"`
	// ProbeAddr is host:port of a TCP listener in that region; the agent
	// only connects and closes, it sends nothing.
	ProbeAddr string `json:"probe_addr"`
}

// RegisterResponse names the new agent and tells it how to behave.
type RegisterResponse struct {
	AgentID            string   `json:"agent_id"`
	MachineID          string   `json:"machine_id"`
	HeartbeatIntervalS int      `json:"heartbeat_interval_s"`
	Regions            []Region `json:"regions"`
}

// GPU is one GPU as NVML reports it, plus whether the agent has it free.
// Zero in a metric field means "not reported": the names of the metrics NVML
// does not support on this GPU (ECC on consumer cards, power on some
// virtualised ones) are listed in Unsupported, so the server can tell an
// idle GPU from one that cannot say.
type GPU struct {
	Index          int      `json:"index"`
	UUID           string   `json:"uuid"`
	Name           string   `json:"name"`  // NVML's name, e.g. "NVIDIA H100 80GB HBM3"
	Class          string   `json:"class"` // normalised, see NormalizeClass
	MemoryTotalMiB uint64   `json:"memory_total_mib"`
	MemoryUsedMiB  uint64   `json:"memory_used_mib"`
	UtilizationPct uint32   `json:"utilization_pct"`
	TemperatureC   uint32   `json:"temperature_c"`
	PowerMW        uint32   `json:"power_mw"`
	PowerLimitMW   uint32   `json:"power_limit_mw"`
	ECCUncorrected uint64   `json:"ecc_uncorrected"` // volatile (since driver load)
	PCIeGen        int      `json:"pcie_gen"`
	PCIeWidth      int      `json:"pcie_width"`
	MIGEnabled     bool     `json:"mig_enabled"`
	Unsupported    []string `json:"unsupported,omitempty"`
	Free           bool     `json:"free"`
	LeaseID        string   `json:"lease_id,omitempty"`
}

// Lease states an agent reports in RunningLease.State.
const (
	LeaseStarting = "starting"
	LeaseRunning  = "running"
	LeaseExited   = "exited"  // the workload ended on its own (see ExitCode)
	LeaseStopped  = "stopped" // stopped by an assignment or at shutdown
	LeaseFailed   = "failed"  // could not start (see Error)
)

// RunningLease is a lease's workload as the agent sees it. Finished leases
// are reported until one heartbeat carrying them has been accepted, so the
// server learns every outcome even across an outage.
type RunningLease struct {
	LeaseID   string   `json:"lease_id"`
	State     string   `json:"state"`
	GPUs      []string `json:"gpus"` // UUIDs
	Driver    string   `json:"driver"`
	StartedAt int64    `json:"started_at,omitempty"` // unix ms
	ExitCode  *int     `json:"exit_code,omitempty"`
	Error     string   `json:"error,omitempty"`
	// Pull is the image download of a starting container workload, so the
	// lease page can show its progress as docker pull does.
	Pull *PullProgress `json:"pull,omitempty"`
}

// PullProgress is how far an image download has got. Total is the size
// the registry lists (config and compressed layers); Done counts the bytes
// received. Digest is the manifest's, once resolved: what will run.
type PullProgress struct {
	Image  string `json:"image"`
	Digest string `json:"digest,omitempty"`
	Done   int64  `json:"done_bytes"`
	Total  int64  `json:"total_bytes"`
	Cached bool   `json:"cached,omitempty"` // the engine already had it: nothing downloaded
}

// Heartbeat is the agent's periodic report. A heartbeat is a full snapshot,
// not a delta: a lost beat loses nothing, the next one supersedes it.
type Heartbeat struct {
	AgentID       string           `json:"agent_id"`
	Seq           uint64           `json:"seq"`     // strictly increasing per agent run; resets to 1 on restart
	BootID        string           `json:"boot_id"` // random per agent run, so a Seq reset is distinguishable from a replay
	SentAt        int64            `json:"sent_at"` // unix ms
	AgentVersion  string           `json:"agent_version"`
	DriverVersion string           `json:"driver_version"`
	CUDAVersion   string           `json:"cuda_version"`
	Simulated     bool             `json:"simulated"`
	GPUs          []GPU            `json:"gpus"`
	RTTms         map[string]int64 `json:"rtt_ms"` // region id → median TCP connect RTT, ms, rounded up (≥ 1)
	Leases        []RunningLease   `json:"running_leases"`
	// ProviderAddress is the chain address of the provider key this agent
	// signs quotes and proofs with (empty when the agent has no chain key:
	// such a machine cannot be leased).
	ProviderAddress string `json:"provider_address,omitempty"`
}

// HeartbeatResponse acknowledges a heartbeat. Optional fields change the
// agent's behaviour when set.
type HeartbeatResponse struct {
	ServerTime         int64    `json:"server_time"`                    // unix ms; the agent logs a warning on a large skew
	HeartbeatIntervalS int      `json:"heartbeat_interval_s,omitempty"` // new interval, if changed
	Regions            []Region `json:"regions,omitempty"`              // new probe list, if changed
}

// Assignment actions.
const (
	ActionStart = "start"
	ActionStop  = "stop"
	// ActionVerify asks for the machine's verification PoC (Verify set):
	// a machine is listed only after one clears.
	ActionVerify = "verify"
	// ActionPreempt is an interruptible lease's preemption notice: the
	// workload gets SIGTERM now, to checkpoint, and is killed at PreemptAt.
	ActionPreempt = "preempt"
)

// VerifyChallenge is a Proof-of-Compute challenge the marketplace checks
// off-chain before it lists a machine: the same work function and
// statistics as an on-chain epoch, for one GPU of the machine's class.
type VerifyChallenge struct {
	Seed        string     `json:"seed"` // hex, 32 bytes
	Params      poc.Params `json:"params"`
	Difficulty  uint64     `json:"difficulty"`
	Required    uint64     `json:"required"`
	WorkSeconds int        `json:"work_seconds"`
}

// VerificationResponse answers a verify assignment with the proof
// (poc.Proof's binary encoding) or why there is none.
type VerificationResponse struct {
	AssignmentID uint64 `json:"assignment_id"`
	Proof        []byte `json:"proof,omitempty"`
	Error        string `json:"error,omitempty"`
}

// Workload is what a buyer asked to run: either a shell command (exec
// driver) or a container image (docker driver).
type Workload struct {
	Command string            `json:"command,omitempty"`
	Image   string            `json:"image,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// RegistryAuth is the buyer's credential for a private image, for
	// this lease only: the marketplace keeps it sealed and hands it to the
	// agent with the start, the agent keeps it in memory for the pull.
	RegistryAuth *RegistryAuth `json:"registry_auth,omitempty"`
}

// RegistryAuth is a registry login (a user and a password or token). Its
// String, GoString and LogValue withhold the password, so a log line or an
// error that formats a workload cannot leak it.
type RegistryAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// String implements fmt.Stringer without the password.
func (a RegistryAuth) String() string { return "registry login " + a.Username + " (password withheld)" }

// GoString implements fmt.GoStringer (%#v) without the password.
func (a RegistryAuth) GoString() string { return a.String() }

// LogValue implements slog.LogValuer without the password.
func (a RegistryAuth) LogValue() slog.Value { return slog.StringValue(a.String()) }

// Assignment tells the agent to start or stop a lease's workload. IDs are
// increasing per agent; the agent passes the last one it has applied as
// ?after= on its next poll, so an assignment lost in transit is delivered
// again and a repeated one is ignored.
type Assignment struct {
	ID       uint64           `json:"id"`
	LeaseID  string           `json:"lease_id"`
	Action   string           `json:"action"`
	GPUs     []string         `json:"gpus,omitempty"`     // UUIDs, for start
	Workload Workload         `json:"workload,omitempty"` // for start
	EndsAt   int64            `json:"ends_at,omitempty"`  // unix ms; the agent stops the workload then even if no stop arrives
	Verify   *VerifyChallenge `json:"verify,omitempty"`   // for verify
	// ChainLeaseID is the lease's id on chain (start): the agent proves
	// only leases it was assigned or signed the quote for.
	ChainLeaseID uint64 `json:"chain_lease_id,omitempty"`
	// PreemptAt is when a preempted workload must have stopped (unix ms;
	// preempt only).
	PreemptAt int64 `json:"preempt_at,omitempty"`
	// Shell is the session to dial back for (shell only; shell.go).
	Shell *ShellRequest `json:"shell,omitempty"`
	// Forward is the tunnel to dial back for (forward only; forward.go).
	Forward *ForwardRequest `json:"forward,omitempty"`
}

// AssignmentsResponse is the long-poll answer: work for the agent, possibly
// none.
type AssignmentsResponse struct {
	Assignments   []Assignment   `json:"assignments"`
	QuoteRequests []QuoteRequest `json:"quote_requests,omitempty"`
}

// Log streams.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	StreamSystem = "system" // agent's own notes: started, exited, lines dropped
)

// LogLine is one line of workload output. Seq is per lease, starts at 1 and
// has no gaps unless the agent says so in a system line, so the server can
// de-duplicate a re-sent batch.
type LogLine struct {
	Seq    uint64 `json:"seq"`
	Time   int64  `json:"time"` // unix ms
	Stream string `json:"stream"`
	Text   string `json:"text"`
}

// LogBatch carries consecutive lines of one lease.
type LogBatch struct {
	LeaseID string    `json:"lease_id"`
	Lines   []LogLine `json:"lines"`
}

// Quote mirrors the chain's escrow Quote (chain/x/escrow/types.Quote) in
// JSON, so this package need not import the Cosmos SDK. PricePerEpoch is an
// integer amount of micro-units as a decimal string; PubKey and Signature are
// filled in by the agent's QuoteSigner with the provider's secp256k1 chain
// key.
type Quote struct {
	Provider      string `json:"provider"` // bech32 chain address
	Buyer         string `json:"buyer"`
	GPUClass      string `json:"gpu_class"`
	GPUs          uint32 `json:"gpus"`
	PricePerEpoch string `json:"price_per_epoch"`
	Epochs        uint64 `json:"epochs"`
	ExpiresAt     int64  `json:"expires_at"` // unix seconds
	Nonce         uint64 `json:"nonce"`
	PubKey        []byte `json:"pub_key,omitempty"`
	Signature     []byte `json:"signature,omitempty"`
	// ExtendsLease, when not 0, is the chain lease this quote extends
	// (MsgExtendLease); such a quote cannot create a lease.
	ExtendsLease uint64 `json:"extends_lease,omitempty"`
}

// QuoteRequest asks the agent to sign a quote at the provider's price.
type QuoteRequest struct {
	RequestID string `json:"request_id"`
	ChainID   string `json:"chain_id"`
	Quote     Quote  `json:"quote"`
}

// QuoteResponse answers a QuoteRequest: the signed quote, or why not.
type QuoteResponse struct {
	RequestID string `json:"request_id"`
	Quote     *Quote `json:"quote,omitempty"`
	Error     string `json:"error,omitempty"`
}

// ErrorBody is the JSON body of every 4xx/5xx on the agent API:
// {"error": {"code", "reason", "message", "field"}}. Code is one of the
// public API's codes (invalid, unauthorized, ...); Reason names the exact
// problem (bad_signature, replay, ...), see Error.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// GiB is a memory size in MiB as a whole number of GiB, rounded to the
// nearest. The driver reports a GPU's usable memory, a little under the
// nominal size (an H100 80GB reports 81 559 MiB, 79.6 GiB): rounding down
// would list it as 79 GiB and a buyer asking for 80 would never find one,
// as seen on a real H100 (docs/provider.md).
func GiB(mib uint64) uint64 { return (mib + 512) / 1024 }

// FormatBytes writes n in the units docker pull uses (kB, MB, GB: powers
// of 1000), with one decimal, in integer arithmetic: sizes are compared
// with limits, and a float's rounding must not show one over its limit.
func FormatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	tenths := n / (div / 10)
	return fmt.Sprintf("%d.%d %cB", tenths/10, tenths%10, "kMGTP"[exp])
}
