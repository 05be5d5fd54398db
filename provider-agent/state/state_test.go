package state

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/highway-compute/highway/protocol"
)

func TestKeyAndState(t *testing.T) {
	d := Dir{Path: filepath.Join(t.TempDir(), "state")}
	if _, err := d.LoadKey(); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("empty dir: %v", err)
	}
	if _, err := d.Load(); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("empty dir: %v", err)
	}
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(d.Path)
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", fi.Mode().Perm())
	}
	priv, err := GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SaveKey(priv); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(filepath.Join(d.Path, KeyFile))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", fi.Mode().Perm())
	}
	if err := d.SaveKey(priv); !errors.Is(err, ErrAlreadyEnrolled) {
		t.Fatalf("overwrite: %v", err)
	}
	got, err := d.LoadKey()
	if err != nil || !got.Equal(priv) {
		t.Fatalf("load key: %v", err)
	}
	if err := os.Chmod(filepath.Join(d.Path, KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.LoadKey(); err == nil {
		t.Fatal("world-readable key accepted")
	}

	s := State{AgentID: "agent-1", MachineID: "m-1", ServerURL: "http://x", EnrolledAt: time.Unix(1, 0).UTC(),
		Regions: []protocol.Region{{ID: "eu", ProbeAddr: "127.0.0.1:1"}}}
	if err := d.Save(s); err != nil {
		t.Fatal(err)
	}
	loaded, err := d.Load()
	if err != nil || loaded.AgentID != "agent-1" || len(loaded.Regions) != 1 {
		t.Fatalf("load: %+v %v", loaded, err)
	}
	fi, _ = os.Stat(filepath.Join(d.Path, StateFile))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("state mode %v", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(d.Path)
	if len(entries) != 2 {
		t.Fatalf("temp files left behind: %v", entries)
	}
	if err := os.WriteFile(filepath.Join(d.Path, StateFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Load(); err == nil {
		t.Fatal("corrupt state accepted")
	}
}
