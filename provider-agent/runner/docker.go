package runner

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/highway-compute/highway/provider-agent/protocol"
)

// Docker runs a workload's image with `docker run --gpus`, so the buyer
// gets only the leased GPUs and a container's isolation instead of the
// host. Limits bound what one lease can take from the machine.
type Docker struct {
	// Binary is the docker CLI; default "docker".
	Binary string
	// Memory (e.g. "64g"), CPUs (e.g. "16"), PidsLimit and ShmSize are
	// passed to docker run when set.
	Memory    string
	CPUs      string
	PidsLimit int
	ShmSize   string
	// Network is --network; default "bridge".
	Network string
}

// Name implements Driver.
func (d *Docker) Name() string { return "docker" }

// Accepts implements Driver: images only.
func (d *Docker) Accepts(w protocol.Workload) bool { return w.Image != "" }

// ContainerName is the container's name for a lease, so a stop can find it
// even if the docker CLI process died.
func ContainerName(leaseID string) string { return "highway-" + safeName(leaseID) }

// Args builds the docker command line (without the binary). The device
// list is quoted for docker's CSV parsing of --gpus ("device=a,b" must be
// one field). docker run has no "--" separator before the image, so
// Workload.Validate rejects images starting with '-' (no flag injection).
func (d *Docker) Args(spec Spec) []string {
	args := []string{"run", "--rm", "--name", ContainerName(spec.LeaseID),
		"--label", "highway.lease=" + safeName(spec.LeaseID),
		"--gpus", `"device=` + strings.Join(spec.GPUs, ",") + `"`,
		"--security-opt", "no-new-privileges",
		"--cap-drop", "ALL",
	}
	network := d.Network
	if network == "" {
		network = "bridge"
	}
	args = append(args, "--network", network)
	if d.Memory != "" {
		args = append(args, "--memory", d.Memory, "--memory-swap", d.Memory)
	}
	if d.CPUs != "" {
		args = append(args, "--cpus", d.CPUs)
	}
	if d.PidsLimit > 0 {
		args = append(args, "--pids-limit", strconv.Itoa(d.PidsLimit))
	}
	if d.ShmSize != "" {
		args = append(args, "--shm-size", d.ShmSize)
	}
	keys := make([]string, 0, len(spec.Workload.Env))
	for k := range spec.Workload.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "NVIDIA_VISIBLE_DEVICES" || k == "CUDA_VISIBLE_DEVICES" {
			continue // --gpus decides the devices, not the buyer
		}
		args = append(args, "-e", k+"="+spec.Workload.Env[k])
	}
	args = append(args, "-e", "HIGHWAY_LEASE_ID="+spec.LeaseID)
	args = append(args, spec.Workload.Image)
	return append(args, spec.Workload.Args...)
}

// Start implements Driver. The docker CLI runs in its own process group
// like an exec workload (its output is the container's); stopping removes
// the container by name first, because killing the CLI alone would leave
// the container running.
func (d *Docker) Start(ctx context.Context, spec Spec, out Output) (Process, error) {
	bin := d.Binary
	if bin == "" {
		bin = "docker"
	}
	argv := append([]string{bin}, d.Args(spec)...)
	name := ContainerName(spec.LeaseID)
	stop := func(grace time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), grace+30*time.Second)
		defer cancel()
		secs := strconv.Itoa(int(grace / time.Second))
		if err := exec.CommandContext(ctx, bin, "stop", "-t", secs, name).Run(); err != nil {
			_ = exec.CommandContext(ctx, bin, "rm", "-f", name).Run()
		}
	}
	p, err := startProcess(ctx, argv, dockerEnv(), "", out, stop)
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	return p, nil
}

// dockerEnv is the docker CLI's environment: the operator's HOME (registry
// credentials live in ~/.docker) and docker's own variables, nothing else.
func dockerEnv() []string {
	env := []string{"PATH=" + defaultPath}
	for _, k := range []string{"HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
