package protocol

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on decoded messages. They bound what one request can make the
// server store or loop over; real machines sit far inside them (the largest
// servers carry 8 to 16 GPUs).
const (
	MaxGPUs         = 64
	MaxRegions      = 64
	MaxLeases       = 64
	MaxLogLines     = 2000
	MaxLogLineBytes = 16 << 10
	MaxIDLen        = 128
	MaxNameLen      = 128
	MaxTokenLen     = 512
	MaxCommandLen   = 16 << 10
	MaxImageLen     = 512
	// A registry token (a JWT, a cloud provider's access token) can run
	// to a few kilobytes; a username is short.
	MaxRegistryUserLen   = 256
	MaxRegistrySecretLen = 8 << 10
	MaxArgs              = 256
	MaxArgLen            = 4 << 10
	MaxEnv               = 128
	MaxEnvValueLen       = 4 << 10
	MaxUnsupported       = 16
	MaxRTTms             = 600_000 // ten minutes: anything above is a broken probe
	MaxMemoryMiB         = 1 << 24 // 16 TiB per GPU
	MaxTemperatureC      = 200
	MaxPowerMW           = 5_000_000 // 5 kW per GPU
	MaxPCIeGen           = 8
	MaxPCIeWidth         = 32
	MaxQuoteRequests     = 64
	MaxAssignments       = 256
)

// checkString rejects empty (when required), over-long, invalid UTF-8 and
// control characters: these strings end up in logs, pages and SQL.
func checkString(field, s string, maxLen int, required bool) *Error {
	switch {
	case s == "" && required:
		return fieldErr(field, "is required")
	case len(s) > maxLen:
		return fieldErr(field, "longer than %d bytes", maxLen)
	case !utf8.ValidString(s):
		return fieldErr(field, "not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fieldErr(field, "contains control characters")
		}
	}
	return nil
}

// checkID is checkString for identifiers: printable ASCII without spaces.
func checkID(field, s string, required bool) *Error {
	if err := checkString(field, s, MaxIDLen, required); err != nil {
		return err
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return fieldErr(field, "must be printable ASCII without spaces")
		}
	}
	return nil
}

func checkClass(field, s string) *Error {
	if err := checkString(field, s, 32, true); err != nil {
		return err
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' {
			return fieldErr(field, "must be upper-case letters, digits and '-'")
		}
	}
	return nil
}

// DecodePublicKey parses RegisterRequest.PublicKey: base64 (standard, padded)
// of a 32-byte ed25519 public key that CheckPublicKey accepts.
func DecodePublicKey(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fieldErr("public_key", "not base64: %v", err)
	}
	if err := CheckPublicKey(b); err != nil {
		return nil, err
	}
	return b, nil
}

// Validate checks a RegisterRequest.
func (r *RegisterRequest) Validate() error {
	if err := checkString("token", r.Token, MaxTokenLen, true); err != nil {
		return err
	}
	if _, err := DecodePublicKey(r.PublicKey); err != nil {
		return err
	}
	if err := checkString("hostname", r.Hostname, MaxNameLen, true); err != nil {
		return err
	}
	if err := checkString("agent_version", r.AgentVersion, MaxNameLen, true); err != nil {
		return err
	}
	if r.ProtocolVersion != Version {
		return fieldErr("protocol_version", "unsupported version %d (server speaks %d)", r.ProtocolVersion, Version)
	}
	if err := checkString("driver_version", r.DriverVersion, MaxNameLen, false); err != nil {
		return err
	}
	if err := checkString("cuda_version", r.CUDAVersion, MaxNameLen, false); err != nil {
		return err
	}
	return validateGPUs(r.GPUs)
}

// Validate checks a RegisterResponse (the agent checks what it is told too).
func (r *RegisterResponse) Validate() error {
	if err := checkID("agent_id", r.AgentID, true); err != nil {
		return err
	}
	if err := checkID("machine_id", r.MachineID, false); err != nil {
		return err
	}
	if r.HeartbeatIntervalS < 0 || r.HeartbeatIntervalS > 3600 {
		return fieldErr("heartbeat_interval_s", "must be 0..3600")
	}
	return validateRegions("regions", r.Regions)
}

func validateRegions(field string, rs []Region) error {
	if len(rs) > MaxRegions {
		return fieldErr(field, "more than %d regions", MaxRegions)
	}
	for i, r := range rs {
		f := fmt.Sprintf("%s[%d]", field, i)
		if err := checkID(f+".id", r.ID, true); err != nil {
			return err
		}
		if err := checkID(f+".probe_addr", r.ProbeAddr, true); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks one GPU entry; field is its JSON path.
// validate checks one GPU. Its errors name the field relative to the GPU
// (".uuid"); validateGPUs puts "gpus[i]" in front, only when there is an
// error: building every field's name up front was most of a beat's
// validation cost.
func (g *GPU) validate() *Error {
	if g.Index < 0 || g.Index >= MaxGPUs {
		return fieldErr(".index", "must be 0..%d", MaxGPUs-1)
	}
	if err := checkID(".uuid", g.UUID, true); err != nil {
		return err
	}
	if err := checkString(".name", g.Name, MaxNameLen, true); err != nil {
		return err
	}
	if err := checkClass(".class", g.Class); err != nil {
		return err
	}
	switch {
	case g.MemoryTotalMiB > MaxMemoryMiB:
		return fieldErr(".memory_total_mib", "above %d", MaxMemoryMiB)
	case g.MemoryUsedMiB > g.MemoryTotalMiB:
		return fieldErr(".memory_used_mib", "above memory_total_mib")
	case g.UtilizationPct > 100:
		return fieldErr(".utilization_pct", "above 100")
	case g.TemperatureC > MaxTemperatureC:
		return fieldErr(".temperature_c", "above %d", MaxTemperatureC)
	case g.PowerMW > MaxPowerMW:
		return fieldErr(".power_mw", "above %d", MaxPowerMW)
	case g.PowerLimitMW > MaxPowerMW:
		return fieldErr(".power_limit_mw", "above %d", MaxPowerMW)
	case g.PCIeGen < 0 || g.PCIeGen > MaxPCIeGen:
		return fieldErr(".pcie_gen", "must be 0..%d", MaxPCIeGen)
	case g.PCIeWidth < 0 || g.PCIeWidth > MaxPCIeWidth:
		return fieldErr(".pcie_width", "must be 0..%d", MaxPCIeWidth)
	case len(g.Unsupported) > MaxUnsupported:
		return fieldErr(".unsupported", "more than %d entries", MaxUnsupported)
	case g.Free && g.LeaseID != "":
		return fieldErr(".free", "a GPU with a lease_id cannot be free")
	}
	for i, u := range g.Unsupported {
		if err := checkID("", u, true); err != nil {
			err.Field = fmt.Sprintf(".unsupported[%d]", i)
			return err
		}
	}
	return checkID(".lease_id", g.LeaseID, false)
}

func validateGPUs(gpus []GPU) error {
	if len(gpus) > MaxGPUs {
		return fieldErr("gpus", "more than %d GPUs", MaxGPUs)
	}
	// Duplicates by comparing with the GPUs before: a machine has at most
	// MaxGPUs, and two sets of maps cost more than these few comparisons.
	for i := range gpus {
		g := &gpus[i]
		if err := g.validate(); err != nil {
			err.Field = fmt.Sprintf("gpus[%d]", i) + err.Field
			return err
		}
		for j := range i {
			if gpus[j].Index == g.Index {
				return fieldErr(fmt.Sprintf("gpus[%d].index", i), "duplicate index %d", g.Index)
			}
			if gpus[j].UUID == g.UUID {
				return fieldErr(fmt.Sprintf("gpus[%d].uuid", i), "duplicate UUID")
			}
		}
	}
	return nil
}

// MaxSeq bounds heartbeat and log sequence numbers: 2⁵³, exact in every
// JSON implementation.
const MaxSeq = 1 << 53

// Validate checks a Heartbeat.
func (h *Heartbeat) Validate() error {
	if err := checkID("agent_id", h.AgentID, true); err != nil {
		return err
	}
	// A run counts up from 1 and never comes near 2⁵³ (a beat a second for
	// 285 million years); a seq up there could only be a mistake, and the
	// next beat of the boot would have nothing higher to send.
	if h.Seq == 0 || h.Seq > MaxSeq {
		return fieldErr("seq", "must be 1..%d", uint64(MaxSeq))
	}
	if err := checkID("boot_id", h.BootID, true); err != nil {
		return err
	}
	if h.SentAt <= 0 {
		return fieldErr("sent_at", "must be a positive unix time in ms")
	}
	for _, s := range []struct{ f, v string }{
		{"agent_version", h.AgentVersion}, {"driver_version", h.DriverVersion}, {"cuda_version", h.CUDAVersion},
	} {
		if err := checkString(s.f, s.v, MaxNameLen, false); err != nil {
			return err
		}
	}
	if err := validateGPUs(h.GPUs); err != nil {
		return err
	}
	if len(h.RTTms) > MaxRegions {
		return fieldErr("rtt_ms", "more than %d regions", MaxRegions)
	}
	for region, ms := range h.RTTms {
		if err := checkID("rtt_ms", region, true); err != nil {
			return err
		}
		if ms < 0 || ms > MaxRTTms {
			return fieldErr("rtt_ms."+region, "must be 0..%d", MaxRTTms)
		}
	}
	if len(h.Leases) > MaxLeases {
		return fieldErr("running_leases", "more than %d leases", MaxLeases)
	}
	if err := checkID("provider_address", h.ProviderAddress, false); err != nil {
		return err
	}
	for i := range h.Leases {
		if err := h.Leases[i].validate(fmt.Sprintf("running_leases[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func (l *RunningLease) validate(field string) error {
	if err := checkID(field+".lease_id", l.LeaseID, true); err != nil {
		return err
	}
	switch l.State {
	case LeaseStarting, LeaseRunning, LeaseExited, LeaseStopped, LeaseFailed:
	default:
		return fieldErr(field+".state", "unknown state %q", l.State)
	}
	if len(l.GPUs) > MaxGPUs {
		return fieldErr(field+".gpus", "more than %d GPUs", MaxGPUs)
	}
	for i, u := range l.GPUs {
		if err := checkID(fmt.Sprintf("%s.gpus[%d]", field, i), u, true); err != nil {
			return err
		}
	}
	if err := checkID(field+".driver", l.Driver, false); err != nil {
		return err
	}
	if l.StartedAt < 0 {
		return fieldErr(field+".started_at", "negative")
	}
	if p := l.Pull; p != nil {
		if err := checkString(field+".pull.image", p.Image, MaxImageLen, true); err != nil {
			return err
		}
		if err := checkID(field+".pull.digest", p.Digest, false); err != nil {
			return err
		}
		if p.Done < 0 || p.Total < 0 || p.Done > p.Total {
			return fieldErr(field+".pull", "want 0 ≤ done_bytes ≤ total_bytes")
		}
	}
	return checkString(field+".error", l.Error, 1024, false).orNil()
}

// orNil converts a typed nil *Error into an untyped nil error, so a
// function can end with `return check(...).orNil()` without returning a
// non-nil interface holding a nil pointer.
func (e *Error) orNil() error {
	if e == nil {
		return nil
	}
	return e
}

// Validate checks a HeartbeatResponse.
func (r *HeartbeatResponse) Validate() error {
	if r.HeartbeatIntervalS < 0 || r.HeartbeatIntervalS > 3600 {
		return fieldErr("heartbeat_interval_s", "must be 0..3600")
	}
	return validateRegions("regions", r.Regions)
}

// Validate checks a Workload for a start assignment: exactly one of command
// and image, bounded sizes, and environment names a shell would accept.
func (w *Workload) Validate(field string) error {
	if (w.Command == "") == (w.Image == "") {
		return fieldErr(field, "exactly one of command and image is required")
	}
	if err := checkString(field+".command", w.Command, MaxCommandLen, false); err != nil {
		return err
	}
	if err := checkString(field+".image", w.Image, MaxImageLen, false); err != nil {
		return err
	}
	if strings.HasPrefix(w.Image, "-") {
		return fieldErr(field+".image", "must not start with '-'")
	}
	if len(w.Args) > MaxArgs {
		return fieldErr(field+".args", "more than %d", MaxArgs)
	}
	for i, a := range w.Args {
		if len(a) > MaxArgLen || !utf8.ValidString(a) || strings.IndexByte(a, 0) >= 0 {
			return fieldErr(fmt.Sprintf("%s.args[%d]", field, i), "longer than %d bytes or not valid text", MaxArgLen)
		}
	}
	if a := w.RegistryAuth; a != nil {
		if w.Image == "" {
			return fieldErr(field+".registry_auth", "a registry login is only for an image")
		}
		if a.Username == "" || a.Password == "" {
			return fieldErr(field+".registry_auth", "needs both a username and a password or token")
		}
		// No control characters: a newline in a header value would be
		// refused by net/http at pull time; better now, with the field.
		if err := checkString(field+".registry_auth.username", a.Username, MaxRegistryUserLen, false); err != nil {
			return err
		}
		if err := checkString(field+".registry_auth.password", a.Password, MaxRegistrySecretLen, false); err != nil {
			return fieldErr(field+".registry_auth.password", "longer than %d bytes or not a single line of text", MaxRegistrySecretLen)
		}
	}
	if len(w.Env) > MaxEnv {
		return fieldErr(field+".env", "more than %d variables", MaxEnv)
	}
	for k, v := range w.Env {
		if !validEnvName(k) {
			return fieldErr(field+".env", "invalid variable name %q", truncate(k, 64))
		}
		if len(v) > MaxEnvValueLen || strings.IndexByte(v, 0) >= 0 {
			return fieldErr(field+".env."+k, "longer than %d bytes or contains NUL", MaxEnvValueLen)
		}
	}
	return nil
}

func validEnvName(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		ok := c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Validate checks an Assignment.
func (a *Assignment) Validate() error {
	if a.ID == 0 {
		return fieldErr("id", "must be ≥ 1")
	}
	if a.Action == ActionVerify {
		return a.validateVerify()
	}
	if err := checkID("lease_id", a.LeaseID, true); err != nil {
		return err
	}
	if a.EndsAt < 0 {
		return fieldErr("ends_at", "negative")
	}
	switch a.Action {
	case ActionStop:
		return nil
	case ActionPreempt:
		if a.PreemptAt <= 0 {
			return fieldErr("preempt_at", "must be a time (unix ms)")
		}
		return nil
	case ActionShell:
		if a.Shell == nil || !(ShellSize{Cols: a.Shell.Cols, Rows: a.Shell.Rows}).Valid() {
			return fieldErr("shell", "needs a session and a size of 1..1000 cells each way")
		}
		return checkID("shell.session", a.Shell.Session, true).orNil()
	case ActionForward:
		if a.Forward == nil || !ValidPort(int(a.Forward.Port)) {
			return fieldErr("forward", "needs a session and a port of 1..65535")
		}
		return checkID("forward.session", a.Forward.Session, true).orNil()
	case ActionStart:
	default:
		return fieldErr("action", "must be %q, %q, %q, %q, %q or %q", ActionStart, ActionStop, ActionPreempt, ActionShell, ActionForward, ActionVerify)
	}
	if len(a.GPUs) == 0 || len(a.GPUs) > MaxGPUs {
		return fieldErr("gpus", "must name 1..%d GPUs", MaxGPUs)
	}
	seen := make(map[string]bool, len(a.GPUs))
	for i, u := range a.GPUs {
		if err := checkID(fmt.Sprintf("gpus[%d]", i), u, true); err != nil {
			return err
		}
		if seen[u] {
			return fieldErr(fmt.Sprintf("gpus[%d]", i), "duplicate GPU")
		}
		seen[u] = true
	}
	return a.Workload.Validate("workload")
}

func (a *Assignment) validateVerify() error {
	v := a.Verify
	if v == nil {
		return fieldErr("verify", "is required for a verify assignment")
	}
	if b, err := hex.DecodeString(v.Seed); err != nil || len(b) != 32 {
		return fieldErr("verify.seed", "must be 32 bytes of hex")
	}
	if err := v.Params.Validate(); err != nil {
		return fieldErr("verify.params", "%v", err)
	}
	if v.Difficulty == 0 || v.Required == 0 {
		return fieldErr("verify.difficulty", "difficulty and required must be positive")
	}
	if v.WorkSeconds < 1 || v.WorkSeconds > 600 {
		return fieldErr("verify.work_seconds", "must be 1..600")
	}
	return nil
}

// Validate checks a VerificationResponse.
func (r *VerificationResponse) Validate() error {
	if r.AssignmentID == 0 {
		return fieldErr("assignment_id", "must be ≥ 1")
	}
	if (len(r.Proof) == 0) == (r.Error == "") {
		return fieldErr("proof", "exactly one of proof and error is required")
	}
	if len(r.Proof) > 1<<20 {
		return fieldErr("proof", "larger than 1 MiB")
	}
	return checkString("error", r.Error, 1024, false).orNil()
}

// Validate checks an AssignmentsResponse and every item in it.
func (r *AssignmentsResponse) Validate() error {
	if len(r.Assignments) > MaxAssignments {
		return fieldErr("assignments", "more than %d", MaxAssignments)
	}
	for i := range r.Assignments {
		if err := r.Assignments[i].Validate(); err != nil {
			return prefixField(fmt.Sprintf("assignments[%d]", i), err)
		}
	}
	if len(r.QuoteRequests) > MaxQuoteRequests {
		return fieldErr("quote_requests", "more than %d", MaxQuoteRequests)
	}
	for i := range r.QuoteRequests {
		if err := r.QuoteRequests[i].Validate(); err != nil {
			return prefixField(fmt.Sprintf("quote_requests[%d]", i), err)
		}
	}
	return nil
}

// prefixField puts a parent path in front of a nested error's field.
func prefixField(prefix string, err error) error {
	var pe *Error
	if errors.As(err, &pe) {
		cp := *pe
		if cp.Field == "" {
			cp.Field = prefix
		} else {
			cp.Field = prefix + "." + cp.Field
		}
		return &cp
	}
	return err
}

// Validate checks a LogBatch.
func (b *LogBatch) Validate() error {
	if err := checkID("lease_id", b.LeaseID, true); err != nil {
		return err
	}
	if len(b.Lines) == 0 || len(b.Lines) > MaxLogLines {
		return fieldErr("lines", "must hold 1..%d lines", MaxLogLines)
	}
	var prev uint64
	for i, l := range b.Lines {
		f := fmt.Sprintf("lines[%d]", i)
		if l.Seq <= prev || l.Seq > MaxSeq {
			return fieldErr(f+".seq", "must increase, up to %d", uint64(MaxSeq))
		}
		prev = l.Seq
		switch l.Stream {
		case StreamStdout, StreamStderr, StreamSystem:
		default:
			return fieldErr(f+".stream", "unknown stream %q", truncate(l.Stream, 32))
		}
		if len(l.Text) > MaxLogLineBytes || !utf8.ValidString(l.Text) {
			return fieldErr(f+".text", "longer than %d bytes or not valid UTF-8", MaxLogLineBytes)
		}
		if l.Time <= 0 {
			return fieldErr(f+".time", "must be a positive unix time in ms")
		}
	}
	return nil
}

// Validate checks a Quote's shape (not its signature: that is the chain's
// job and needs the SDK).
func (q *Quote) Validate() error {
	if err := checkID("provider", q.Provider, true); err != nil {
		return err
	}
	if err := checkID("buyer", q.Buyer, true); err != nil {
		return err
	}
	if err := checkClass("gpu_class", q.GPUClass); err != nil {
		return err
	}
	if q.GPUs == 0 || q.GPUs > MaxGPUs {
		return fieldErr("gpus", "must be 1..%d", MaxGPUs)
	}
	if len(q.PricePerEpoch) == 0 || len(q.PricePerEpoch) > 40 {
		return fieldErr("price_per_epoch", "must be a positive integer string")
	}
	for i := 0; i < len(q.PricePerEpoch); i++ {
		if q.PricePerEpoch[i] < '0' || q.PricePerEpoch[i] > '9' {
			return fieldErr("price_per_epoch", "must be a positive integer string")
		}
	}
	if strings.TrimLeft(q.PricePerEpoch, "0") == "" {
		return fieldErr("price_per_epoch", "must be positive")
	}
	if q.Epochs == 0 {
		return fieldErr("epochs", "must be ≥ 1")
	}
	if q.ExpiresAt <= 0 {
		return fieldErr("expires_at", "must be a positive unix time in seconds")
	}
	if len(q.PubKey) > 65 || len(q.Signature) > 128 {
		return fieldErr("signature", "pub_key or signature too long")
	}
	return nil
}

// Validate checks a QuoteRequest.
func (r *QuoteRequest) Validate() error {
	if err := checkID("request_id", r.RequestID, true); err != nil {
		return err
	}
	if err := checkID("chain_id", r.ChainID, true); err != nil {
		return err
	}
	if err := r.Quote.Validate(); err != nil {
		return prefixField("quote", err)
	}
	return nil
}

// Validate checks a QuoteResponse.
func (r *QuoteResponse) Validate() error {
	if err := checkID("request_id", r.RequestID, true); err != nil {
		return err
	}
	if (r.Quote == nil) == (r.Error == "") {
		return fieldErr("quote", "exactly one of quote and error is required")
	}
	if r.Quote != nil {
		if err := r.Quote.Validate(); err != nil {
			return prefixField("quote", err)
		}
		if len(r.Quote.Signature) == 0 {
			return fieldErr("quote.signature", "is required")
		}
	}
	return checkString("error", r.Error, 1024, false).orNil()
}
