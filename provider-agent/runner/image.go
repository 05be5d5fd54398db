package runner

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// busyboxApplets are the commands the small local image offers: enough
// for demo workloads and tests (a shell, echo, sleep, and a look around).
var busyboxApplets = []string{"sh", "echo", "sleep", "id", "hostname", "cat", "env", "true", "ls", "uname", "date", "seq"}

// ImportBusyboxImage builds image from a static busybox (Debian's
// busybox-static) with engine's `import`: a few hundred kilobytes, and no
// registry needed, for machines that reach none (the demo fleet, tests).
func ImportBusyboxImage(ctx context.Context, engine, image string) error {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return fmt.Errorf("no busybox to build %s from (Debian: busybox-static)", image)
	}
	dir, err := os.MkdirTemp("", "highway-image-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		return err
	}
	raw, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), raw, 0o755); err != nil {
		return err
	}
	for _, app := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", app)); err != nil {
			return err
		}
	}
	tarball := filepath.Join(dir, "rootfs.tar")
	if out, err := exec.CommandContext(ctx, "tar", "-C", root, "-cf", tarball, ".").CombinedOutput(); err != nil {
		return fmt.Errorf("tar the image: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if out, err := exec.CommandContext(ctx, engine, "import", tarball, image).CombinedOutput(); err != nil {
		return fmt.Errorf("%s import: %w: %s", engine, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// HasImage reports whether engine has image locally.
func HasImage(ctx context.Context, engine, image string) bool {
	return exec.CommandContext(ctx, engine, "image", "inspect", image).Run() == nil
}

// EnsureImage makes engine have image, pulling it with the engine (and so
// with the operator's registry logins) when it does not: for the
// operator's own images only, never a buyer's (Puller).
func EnsureImage(ctx context.Context, engine, image string) error {
	if HasImage(ctx, engine, image) {
		return nil
	}
	if out, err := exec.CommandContext(ctx, engine, "pull", image).CombinedOutput(); err != nil {
		return fmt.Errorf("%s pull %s: %w: %s", engine, image, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// CanRun checks that engine really runs a container of image: an engine
// that answers `info` may still fail at the runtime (setrlimit, cgroups).
func CanRun(ctx context.Context, engine, image string) error {
	if out, err := exec.CommandContext(ctx, engine, "run", "--rm", image, "true").CombinedOutput(); err != nil {
		return fmt.Errorf("%s cannot run a container: %s", engine, strings.TrimSpace(string(out)))
	}
	return nil
}

// FindEngine returns the first of candidates (CLI names, e.g. podman,
// docker) that runs a container of image, building image from busybox
// when the engine lacks it; the error says why none did.
func FindEngine(ctx context.Context, candidates []string, image string) (string, error) {
	var why []string
	for _, c := range candidates {
		if _, err := exec.LookPath(c); err != nil {
			why = append(why, c+": not installed")
			continue
		}
		if err := exec.CommandContext(ctx, c, "info").Run(); err != nil {
			why = append(why, c+" info: "+err.Error())
			continue
		}
		if !HasImage(ctx, c, image) {
			if err := ImportBusyboxImage(ctx, c, image); err != nil {
				why = append(why, err.Error())
				continue
			}
		}
		if err := CanRun(ctx, c, image); err != nil {
			why = append(why, err.Error())
			continue
		}
		return c, nil
	}
	return "", fmt.Errorf("no container engine runs here (%s)", strings.Join(why, "; "))
}
