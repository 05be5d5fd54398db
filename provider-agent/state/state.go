// Package state keeps the agent's small local state: its ed25519 key and
// what enrollment returned. Everything lives in one directory, created 0700;
// files are written 0600 and atomically (temp file, fsync, rename), so a
// crash or power cut leaves either the old file or the new one, never half.
package state

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/highway-compute/highway/protocol"
)

// File names inside the state directory.
const (
	KeyFile   = "agent.key"  // PKCS#8 PEM ed25519 private key, 0600
	StateFile = "agent.json" // State as JSON, 0600
)

// ErrNotEnrolled: the directory holds no enrollment yet.
var ErrNotEnrolled = errors.New("agent not enrolled: run `provider-agent enroll` first")

// ErrAlreadyEnrolled: enroll would overwrite an existing key.
var ErrAlreadyEnrolled = errors.New("agent already enrolled in this state directory (remove it or use another --state-dir to enroll again)")

// State is what the agent remembers between runs. It holds no secret: the
// key is in KeyFile, and the enrollment token is used once and never stored.
type State struct {
	AgentID            string            `json:"agent_id"`
	MachineID          string            `json:"machine_id"`
	ServerURL          string            `json:"server_url"`
	PublicKey          string            `json:"public_key"` // base64, for the operator's reference
	EnrolledAt         time.Time         `json:"enrolled_at"`
	HeartbeatIntervalS int               `json:"heartbeat_interval_s"`
	Regions            []protocol.Region `json:"regions"`
}

// Dir is a state directory.
type Dir struct {
	Path string
}

// Init creates the directory (0700) if needed and tightens its mode.
func (d Dir) Init() error {
	if d.Path == "" {
		return errors.New("state directory not set")
	}
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	if err := os.Chmod(d.Path, 0o700); err != nil {
		return fmt.Errorf("chmod state directory: %w", err)
	}
	return nil
}

// GenerateKey makes a new ed25519 key from rand (crypto/rand.Reader in
// production, a fixed reader in tests).
func GenerateKey(rand io.Reader) (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return priv, nil
}

// HasKey reports whether a key file exists.
func (d Dir) HasKey() bool {
	_, err := os.Stat(filepath.Join(d.Path, KeyFile))
	return err == nil
}

// SaveKey writes the private key, 0600. It refuses to replace an existing
// key: losing it would orphan the agent's registration.
func (d Dir) SaveKey(priv ed25519.PrivateKey) error {
	if d.HasKey() {
		return ErrAlreadyEnrolled
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	return writeAtomic(filepath.Join(d.Path, KeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// LoadKey reads the private key. Like ssh, it refuses a key file that
// group or others can read: such a key may already be someone else's.
func (d Dir) LoadKey() (ed25519.PrivateKey, error) {
	path := filepath.Join(d.Path, KeyFile)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotEnrolled
	}
	if err != nil {
		return nil, fmt.Errorf("stat key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %v: it must be readable by its owner only (chmod 600)", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("key file %s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key file %s: not an ed25519 key (%T)", path, k)
	}
	return priv, nil
}

// Save writes the state file.
func (d Dir) Save(s State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return writeAtomic(filepath.Join(d.Path, StateFile), append(data, '\n'))
}

// Load reads the state file.
func (d Dir) Load() (State, error) {
	data, err := os.ReadFile(filepath.Join(d.Path, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, ErrNotEnrolled
	}
	if err != nil {
		return State{}, fmt.Errorf("read state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return State{}, fmt.Errorf("state file %s: %w", filepath.Join(d.Path, StateFile), err)
	}
	if s.AgentID == "" || s.ServerURL == "" {
		return State{}, fmt.Errorf("state file %s: agent_id or server_url missing", filepath.Join(d.Path, StateFile))
	}
	return s, nil
}

// writeAtomic writes data to path with mode 0600 via a temp file in the same
// directory, fsyncs it, renames it over path and fsyncs the directory.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err == nil {
		if _, err = f.Write(data); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync() // best effort: some filesystems refuse fsync on directories
		_ = d.Close()
	}
	return nil
}
