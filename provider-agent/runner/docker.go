package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/highway-compute/highway/protocol"
)

// Docker runs a workload's image in a container, so the buyer gets only
// the leased GPUs and a container's isolation instead of the host. Limits
// bound what one lease can take from the machine. Any engine with a
// docker-compatible CLI works: Docker, or Podman (`podman`, or its
// `docker` shim from podman-docker).
type Docker struct {
	// Binary is the engine's CLI; default "docker".
	Binary string
	// Devices is how the leased GPUs reach the container: DevicesGPUs
	// (default; Docker with the NVIDIA Container Toolkit), DevicesCDI
	// (Podman, or Docker with CDI: one nvidia.com/gpu=<uuid> each), or
	// DevicesNone, only where there is no GPU (CI, the demo fleet).
	Devices string
	// Memory (e.g. "64g"), CPUs (e.g. "16"), PidsLimit and ShmSize are
	// passed to docker run when set.
	Memory    string
	CPUs      string
	PidsLimit int
	ShmSize   string
	// Network is --network; default "bridge".
	Network string
	// DefaultImage runs the workloads given as a command (sh -c COMMAND)
	// rather than an image, so they get a container too; empty: this
	// driver takes images only.
	DefaultImage string
	// Pull fetches images from their registries (limits, progress, the
	// buyer's login); nil: only images the engine already has run (the
	// demo fleet's and tests' local images), and a login is refused.
	Pull *Puller
	// Owner is the agent's id: its containers carry it (OwnerLabel), so
	// Cleanup removes only this agent's leftovers, not another's on the
	// same host (several agents share one engine in the demo fleet).
	Owner string

	// adoptable are the containers that a previous run of this agent left
	// running (set by Survey, before any Start): the lease's next start
	// attaches to its container instead of starting another, and Reap
	// removes those no lease claimed.
	adoptable *adoptSet
}

// For returns a driver with d's settings for another agent (the demo fleet
// runs one agent per simulated machine on one engine). It copies the
// settings, not the survey: each agent surveys its own containers.
func (d *Docker) For(owner string) *Docker {
	return &Docker{Binary: d.Binary, Devices: d.Devices, Memory: d.Memory, CPUs: d.CPUs, PidsLimit: d.PidsLimit,
		ShmSize: d.ShmSize, Network: d.Network, DefaultImage: d.DefaultImage, Pull: d.Pull, Owner: owner}
}

// adoptSet is the containers, by name, still waiting for their lease.
type adoptSet struct {
	mu    sync.Mutex
	names map[string]bool
}

// claim takes name out of the set, reporting whether it was there.
func (a *adoptSet) claim(name string) bool {
	if a == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ok := a.names[name]
	delete(a.names, name)
	return ok
}

// has reports whether name is in the set, leaving it there.
func (a *adoptSet) has(name string) bool {
	if a == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.names[name]
}

// rest empties the set and returns what was left, sorted.
func (a *adoptSet) rest() []string {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	names := make([]string, 0, len(a.names))
	for n := range a.names {
		names = append(names, n)
	}
	a.names = nil
	slices.Sort(names)
	return names
}

// How the leased GPUs are given to a container.
const (
	DevicesGPUs = "gpus"
	DevicesCDI  = "cdi"
	DevicesNone = "none"
)

// LeaseLabel marks every container the agent starts with its lease, so a
// restarted agent can find what it left behind (Cleanup).
const LeaseLabel = "highway.lease"

// OwnerLabel marks a container with the agent that started it.
const OwnerLabel = "highway.agent"

// Name implements Driver.
func (d *Docker) Name() string { return "docker" }

// Accepts implements Driver: images, and commands when there is a
// DefaultImage to run them in.
func (d *Docker) Accepts(w protocol.Workload) bool {
	return w.Image != "" || (w.Command != "" && d.DefaultImage != "")
}

// ContainerName is the container's name for a lease, so a stop can find it
// even if the docker CLI process died.
func ContainerName(leaseID string) string { return "highway-" + safeName(leaseID) }

// Args builds the docker command line (without the binary). The device
// list is quoted for docker's CSV parsing of --gpus ("device=a,b" must be
// one field). docker run has no "--" separator before the image, so
// Workload.Validate rejects images starting with '-' (no flag injection).
func (d *Docker) Args(spec Spec) []string {
	// No --rm: the container must outlive a crash of the agent (and of
	// this CLI) to be adopted; Wait removes it once it has ended.
	// --pull never: the engine runs only what Prepare fetched and checked
	// (or the local images); it must not fetch by itself, with the
	// operator's registry logins and no limits.
	args := []string{"run", "--pull", "never", "--name", ContainerName(spec.LeaseID),
		"--label", LeaseLabel + "=" + safeName(spec.LeaseID),
	}
	if d.Owner != "" {
		args = append(args, "--label", OwnerLabel+"="+safeName(d.Owner))
	}
	switch d.Devices {
	case DevicesNone:
	case DevicesCDI:
		for _, g := range spec.GPUs {
			args = append(args, "--device", "nvidia.com/gpu="+g)
		}
	default:
		args = append(args, "--gpus", `"device=`+strings.Join(spec.GPUs, ",")+`"`)
	}
	args = append(args, "--security-opt", "no-new-privileges", "--cap-drop", "ALL")
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
	if w := spec.Workload; w.Image == "" {
		// A command runs as the exec driver runs it, in the default image.
		return append(append(args, d.DefaultImage, "sh", "-c", w.Command, "sh"), w.Args...)
	}
	args = append(args, spec.Workload.Image)
	return append(args, spec.Workload.Args...)
}

// Prepare implements Preparer: it pulls the workload's image (Pull) and
// returns the spec to start, naming the image by the id that was checked.
// A container to adopt, a command in the default image, and, without a
// Puller, an image the engine has, need nothing.
func (d *Docker) Prepare(ctx context.Context, spec Spec, progress func(protocol.PullProgress), out Output) (Spec, error) {
	w := spec.Workload
	if w.Image == "" || d.adoptable.has(ContainerName(spec.LeaseID)) {
		return spec, nil
	}
	if d.Pull == nil {
		if w.RegistryAuth != nil {
			return spec, errors.New("this provider pulls no images from registries, so a registry login cannot be used")
		}
		return spec, nil
	}
	out(protocol.StreamSystem, "pulling "+w.Image)
	got, err := d.Pull.Pull(ctx, w.Image, w.RegistryAuth, progress)
	if err != nil {
		return spec, err
	}
	if got.Cached {
		out(protocol.StreamSystem, fmt.Sprintf("image %s (%s) is cached: nothing to download", w.Image, got.Digest))
	} else {
		out(protocol.StreamSystem, fmt.Sprintf("pulled %s (%s, %s)", w.Image, got.Digest, protocol.FormatBytes(got.Bytes)))
	}
	spec.Workload.Image = got.ID
	spec.Workload.RegistryAuth = nil // used; nothing after this needs it
	return spec, nil
}

// Start implements Driver. The docker CLI runs in its own process group
// like an exec workload (its output is the container's); stopping removes
// the container by name first, because killing the CLI alone would leave
// the container running. A container of this lease that the agent's
// previous run left running (Survey) is adopted instead: attached to, its
// output streamed from then on and its exit reported, rather than a
// second one started beside it on the same GPUs.
func (d *Docker) Start(ctx context.Context, spec Spec, out Output) (Process, error) {
	bin := d.bin()
	name := ContainerName(spec.LeaseID)
	adopt := d.adoptable.claim(name)
	argv := append([]string{bin}, d.Args(spec)...)
	if adopt {
		argv = []string{bin, "attach", "--no-stdin", name}
		out(protocol.StreamSystem, "adopted the container the agent's previous run left running; output before the restart was shipped then")
	}
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
	return &containerProc{proc: p, bin: bin, name: name, adopted: adopt}, nil
}

// containerProc is a container's CLI process: when it ends, the container
// is removed, and an adopted one's exit code is read from the engine
// (attach reports its own, not the container's).
type containerProc struct {
	*proc
	bin, name string
	adopted   bool

	once sync.Once
	code int
	err  error
}

// Wait implements Process.
func (c *containerProc) Wait() (int, error) {
	c.once.Do(func() {
		c.code, c.err = c.proc.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c.adopted {
			out, err := exec.CommandContext(ctx, c.bin, "inspect", "--format", "{{.State.ExitCode}}", c.name).Output()
			if n, perr := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && perr == nil {
				c.code, c.err = n, nil
			}
		}
		_ = exec.CommandContext(ctx, c.bin, "rm", "-f", c.name).Run()
	})
	return c.code, c.err
}

// Survey looks at the containers a previous run of this agent left
// (by OwnerLabel): those still running are kept for adoption (Start
// attaches to one when its lease is assigned again), the others are
// removed. It returns how many it kept and removed. Without an Owner it
// cannot tell its own containers from another agent's and cleans up as
// Cleanup does.
func (d *Docker) Survey(ctx context.Context) (kept, removed int, err error) {
	if d.Owner == "" {
		removed, err = d.Cleanup(ctx)
		return 0, removed, err
	}
	bin := d.bin()
	filter := "label=" + OwnerLabel + "=" + safeName(d.Owner)
	list := func(all bool) ([]string, error) {
		args := []string{"ps", "--filter", filter, "--format", "{{.Names}}"}
		if all {
			args = append(args, "-a")
		}
		out, err := exec.CommandContext(ctx, bin, args...).Output()
		if err != nil {
			return nil, fmt.Errorf("docker: list this agent's containers: %w", err)
		}
		return strings.Fields(string(out)), nil
	}
	running, err := list(false)
	if err != nil {
		return 0, 0, err
	}
	all, err := list(true)
	if err != nil {
		return 0, 0, err
	}
	set := &adoptSet{names: map[string]bool{}}
	for _, n := range running {
		set.names[n] = true
	}
	d.adoptable = set
	var ended []string
	for _, n := range all {
		if !slices.Contains(running, n) {
			ended = append(ended, n)
		}
	}
	removed, err = d.remove(ctx, ended)
	return len(running), removed, err
}

// Reap removes the surveyed containers no lease has claimed: the agent
// calls it once the marketplace has handed it every live lease (its first
// poll that brought no assignment), so what is left belongs to leases
// that ended while it was down.
func (d *Docker) Reap(ctx context.Context) (int, error) {
	return d.remove(ctx, d.adoptable.rest())
}

// Cleanup removes the containers a previous run of the agent left (by
// OwnerLabel, or every LeaseLabel container when Owner is empty): after a crash or a restart they would hold GPUs and memory
// for leases the agent no longer runs. The marketplace assigns the active
// leases again, and they start afresh. It returns how many it removed.
func (d *Docker) Cleanup(ctx context.Context) (int, error) {
	bin := d.bin()
	filter := "label=" + LeaseLabel
	if d.Owner != "" {
		filter = "label=" + OwnerLabel + "=" + safeName(d.Owner)
	}
	out, err := exec.CommandContext(ctx, bin, "ps", "-aq", "--filter", filter).Output()
	if err != nil {
		return 0, fmt.Errorf("docker: list leftover containers: %w", err)
	}
	return d.remove(ctx, strings.Fields(string(out)))
}

// remove kills and removes containers by id or name, one at a time (a
// container that ended meanwhile would fail a command naming several),
// kill first: rm -f would give each its stop timeout, and a workload that
// ignores SIGTERM (a shell as PID 1) would hold the start up.
func (d *Docker) remove(ctx context.Context, ids []string) (int, error) {
	bin := d.bin()
	removed := 0
	var errs []error
	for _, id := range ids {
		_ = exec.CommandContext(ctx, bin, "kill", id).Run()
		if out, err := exec.CommandContext(ctx, bin, "rm", "-f", id).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("docker: remove leftover container %s: %w: %s", id, err, strings.TrimSpace(string(out))))
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

func (d *Docker) bin() string {
	if d.Binary == "" {
		return "docker"
	}
	return d.Binary
}

// dockerEnv is the engine CLI's environment: the operator's HOME (registry
// credentials live in ~/.docker), docker's and podman's own variables,
// nothing else.
func dockerEnv() []string {
	env := []string{"PATH=" + defaultPath}
	for _, k := range []string{"HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
		"CONTAINERS_CONF", "CONTAINER_HOST", "CONTAINER_CONNECTION", "XDG_RUNTIME_DIR", "REGISTRY_AUTH_FILE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
