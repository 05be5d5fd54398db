package runner

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/provider-agent/runner/registrytest"
)

// pullRun starts one lease of image on a Docker driver with p and waits
// for it to end; it returns the lease's report and log.
func pullRun(t *testing.T, p *Puller, id, image string, auth *protocol.RegistryAuth, args ...string) (protocol.RunningLease, []protocol.LogLine, []protocol.PullProgress) {
	t.Helper()
	var lg logs
	var mu sync.Mutex
	var progress []protocol.PullProgress
	m := NewManager([]Driver{&Docker{Binary: p.bin(), Devices: DevicesNone, Pull: p}}, lg.sink, time.Second, nil)
	m.OnChange(func() {
		for _, l := range m.Leases() {
			if l.Pull != nil {
				mu.Lock()
				progress = append(progress, *l.Pull)
				mu.Unlock()
			}
		}
	})
	defer m.StopAll()
	if err := m.Start(Spec{LeaseID: id, GPUs: []string{"GPU-a"}, Workload: protocol.Workload{Image: image, Args: args, RegistryAuth: auth}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := m.Wait(ctx, id); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return m.Leases()[0], lg.get(id), progress
}

func logText(lines []protocol.LogLine) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Stream + ": " + l.Text + "\n")
	}
	return b.String()
}

// TestPullRunsTheImageFromARegistry: an image named by tag is pulled from
// a real registry, with progress up to its listed size, and runs; the
// same image by digest, for a second lease, is found cached (one
// manifest request, no blob downloaded) and runs what was checked.
func TestPullRunsTheImageFromARegistry(t *testing.T) {
	bin, _ := testEngine(t)
	reg := registrytest.New(t)
	img := registrytest.BusyboxImage(t, registrytest.NoiseLayer(t, 3<<20))
	byTag, byDigest := reg.Push(t, "highway/pull", "v1", img)
	registrytest.Evict(t, bin, img)

	p := &Puller{Binary: bin, AllowPrivate: true}
	l, lines, progress := pullRun(t, p, "pull-1", byTag, nil, "sh", "-c", "echo ran from the registry")
	text := logText(lines)
	if l.State != protocol.LeaseExited || *l.ExitCode != 0 || !strings.Contains(text, "ran from the registry") {
		t.Fatalf("lease %+v\n%s", l, text)
	}
	d, _ := img.Digest()
	if !strings.Contains(text, "pulled "+byTag+" ("+d.String()) {
		t.Fatalf("no pull line naming the digest:\n%s", text)
	}
	if len(progress) < 2 || progress[0].Done != 0 || progress[len(progress)-1].Done != progress[len(progress)-1].Total ||
		progress[0].Total < 3<<20 || progress[0].Digest != d.String() {
		t.Fatalf("progress %+v", progress)
	}
	if l.Pull == nil || l.Pull.Done != l.Pull.Total || l.Pull.Cached {
		t.Fatalf("final pull report %+v", l.Pull)
	}

	blobs := reg.Blobs.Load()
	l, lines, _ = pullRun(t, p, "pull-2", byDigest, nil, "echo", "cached run")
	text = logText(lines)
	if l.State != protocol.LeaseExited || !strings.Contains(text, "cached run") || !strings.Contains(text, "is cached") {
		t.Fatalf("lease %+v\n%s", l, text)
	}
	if n := reg.Blobs.Load() - blobs; n != 0 {
		t.Fatalf("a cached image downloaded %d blobs", n)
	}
	if l.Pull == nil || !l.Pull.Cached {
		t.Fatalf("pull report %+v, want cached", l.Pull)
	}
}

// TestPullRefusesImagesOverTheLimit: an image listed over the provider's
// limit is refused before any layer is downloaded, and one that unpacks
// to far more than it downloads (a decompression bomb) before the engine
// unpacks it; neither reaches the engine.
func TestPullRefusesImagesOverTheLimit(t *testing.T) {
	bin, _ := testEngine(t)
	reg := registrytest.New(t)
	big := registrytest.BusyboxImage(t, registrytest.NoiseLayer(t, 4<<20))
	byTag, _ := reg.Push(t, "highway/big", "v1", big)
	p := &Puller{Binary: bin, AllowPrivate: true, MaxBytes: 3 << 20}
	l, lines, _ := pullRun(t, p, "too-big", byTag, nil)
	if l.State != protocol.LeaseFailed || !strings.Contains(l.Error, "over this provider's limit of 3.1 MB") {
		t.Fatalf("lease %+v\n%s", l, logText(lines))
	}
	if n := reg.Blobs.Load(); n != 0 {
		t.Fatalf("%d blobs downloaded for a refused image", n)
	}

	bomb := registrytest.BusyboxImage(t, registrytest.BombLayer(t, 200<<20))
	byTag, _ = reg.Push(t, "highway/bomb", "v1", bomb)
	p = &Puller{Binary: bin, AllowPrivate: true, MaxBytes: 4 << 20}
	l, lines, _ = pullRun(t, p, "bomb", byTag, nil)
	if l.State != protocol.LeaseFailed || !strings.Contains(l.Error, "unpacks to more than") {
		t.Fatalf("lease %+v\n%s", l, logText(lines))
	}
	cfg, _ := bomb.ConfigName()
	if p.has(context.Background(), cfg.Hex) {
		_ = exec.Command(bin, "rmi", "-f", cfg.Hex).Run()
		t.Fatal("the bomb reached the engine")
	}
}

// TestPullWithTheBuyersLogin: a private image runs with the login the
// buyer gave for the lease, is refused without it or with a wrong one,
// and the password appears in no log line and no error.
func TestPullWithTheBuyersLogin(t *testing.T) {
	bin, _ := testEngine(t)
	reg := registrytest.New(t)
	const secret = "s3cret-token-9f8e7d"
	reg.Login("buyer", secret)
	img := registrytest.BusyboxImage(t, registrytest.NoiseLayer(t, 1<<10))
	byTag, _ := reg.Push(t, "acme/private", "v1", img)
	registrytest.Evict(t, bin, img)

	p := &Puller{Binary: bin, AllowPrivate: true}
	var all strings.Builder
	for _, c := range []struct {
		id   string
		auth *protocol.RegistryAuth
	}{{"anon", nil}, {"wrong", &protocol.RegistryAuth{Username: "buyer", Password: "guess-" + secret[:4]}}} {
		l, lines, _ := pullRun(t, p, c.id, byTag, c.auth)
		all.WriteString(logText(lines) + l.Error)
		if l.State != protocol.LeaseFailed || !strings.Contains(l.Error, "refused access (401)") {
			t.Fatalf("%s: lease %+v\n%s", c.id, l, logText(lines))
		}
	}
	auth := &protocol.RegistryAuth{Username: "buyer", Password: secret}
	l, lines, _ := pullRun(t, p, "login", byTag, auth, "echo", "private image ran")
	all.WriteString(logText(lines) + l.Error)
	if l.State != protocol.LeaseExited || !strings.Contains(logText(lines), "private image ran") {
		t.Fatalf("lease %+v\n%s", l, logText(lines))
	}
	if strings.Contains(all.String(), secret) {
		t.Fatalf("the password leaked into the log:\n%s", all.String())
	}
}

// TestPullRefusesInwardRegistries: without AllowPrivate, a registry on
// loopback (or any private address) is refused at connect time: the
// buyer cannot make the agent reach the provider's own network. The
// registry sees no request.
func TestPullRefusesInwardRegistries(t *testing.T) {
	reg := registrytest.New(t)
	p := &Puller{Binary: "docker"}
	for _, ref := range []string{reg.Host + "/x/y:1", "localhost:" + strings.Split(reg.Host, ":")[1] + "/x/y:1", "10.1.2.3:5000/x:1", "169.254.169.254/latest:1"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := p.Pull(ctx, ref, nil, nil)
		cancel()
		if !errors.Is(err, ErrRegistryAddress) {
			t.Fatalf("%s: %v, want %v", ref, err, ErrRegistryAddress)
		}
	}
	if n := reg.Requests.Load(); n != 0 {
		t.Fatalf("the inward registry got %d requests", n)
	}
}

// TestStopAndTimeoutDuringAPull: a stop while the image is still arriving
// ends the lease at once (stopped, no container); a pull that outlasts
// the provider's timeout fails the lease saying so.
func TestStopAndTimeoutDuringAPull(t *testing.T) {
	reg := registrytest.New(t)
	img := registrytest.BusyboxImage(t)
	byTag, _ := reg.Push(t, "highway/slow", "v1", img)
	release := reg.HoldBlobs()
	defer release()

	var lg logs
	p := &Puller{Binary: "/nonexistent/docker", AllowPrivate: true}
	m := NewManager([]Driver{&Docker{Binary: p.Binary, Devices: DevicesNone, Pull: p}}, lg.sink, time.Second, nil)
	defer m.StopAll()
	if err := m.Start(Spec{LeaseID: "slow", GPUs: []string{"GPU-a"}, Workload: protocol.Workload{Image: byTag}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); reg.Blobs.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the pull never asked for a blob")
		}
	}
	if b := m.Busy(); b["GPU-a"] != "slow" {
		t.Fatalf("a pulling lease does not hold its GPU: %v", b)
	}
	// A second lease of the same image waits for the first's download; a
	// stop ends its wait at once.
	if err := m.Start(Spec{LeaseID: "behind", GPUs: []string{"GPU-b"}, Workload: protocol.Workload{Image: byTag}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // its manifest read, it waits on the image
	start := time.Now()
	if err := m.Stop("behind"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("stopping a lease waiting behind another pull took %s", took)
	}
	start = time.Now()
	if err := m.Stop("slow"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("stop took %s", took)
	}
	for _, l := range m.Leases() {
		if l.State != protocol.LeaseStopped {
			t.Fatalf("lease %+v, want stopped", l)
		}
	}
	lg.waitFor(t, "slow", "stopped before it started")

	p2 := &Puller{Binary: p.Binary, AllowPrivate: true, Timeout: 500 * time.Millisecond}
	l, lines, _ := pullRun(t, p2, "timeout", byTag, nil)
	if l.State != protocol.LeaseFailed || !strings.Contains(l.Error, "not done within this provider's limit of 500ms") {
		t.Fatalf("lease %+v\n%s", l, logText(lines))
	}
}

func TestRefuseInward(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:80": false, "[::1]:443": false, "10.0.0.1:443": false, "172.16.5.4:443": false, "192.168.1.1:443": false,
		"169.254.169.254:80": false, "[fe80::1]:443": false, "0.0.0.0:443": false, "[fd00::1]:443": false,
		"100.100.100.200:80": false, "198.18.0.1:443": false, "240.0.0.1:443": false, "0.1.2.3:443": false, "192.0.0.8:443": false,
		"[::ffff:10.0.0.1]:443": false, "[64:ff9b::a00:1]:443": false, "[2002:a00:1::1]:443": false, "[64:ff9b::808:808]:443": true,
		"8.8.8.8:443": true, "[2606:4700::1111]:443": true, "registry.example:443": false,
	} {
		err := refuseInward("tcp", addr, nil)
		if (err == nil) != ok {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error) { return m, nil }

// TestPullCacheIsNotProofOfAccess: an attacker who knows a private image's
// manifest and config (not secret the way its layers are) serves them
// from a registry of their own, hoping the agent finds the image cached
// and runs it. The cache counts only what this agent downloaded from that
// same repository, so the pull goes to the attacker's registry for the
// layers, which it does not have: refused, nothing runs.
func TestPullCacheIsNotProofOfAccess(t *testing.T) {
	bin, _ := testEngine(t)
	victim := registrytest.New(t)
	victim.Login("victim", "victim-token")
	img := registrytest.BusyboxImage(t, registrytest.NoiseLayer(t, 1<<10))
	byTag, _ := victim.Push(t, "acme/secret", "v1", img)
	registrytest.Evict(t, bin, img)
	p := &Puller{Binary: bin, AllowPrivate: true}
	if l, lines, _ := pullRun(t, p, "victim", byTag, &protocol.RegistryAuth{Username: "victim", Password: "victim-token"}, "true"); l.State != protocol.LeaseExited {
		t.Fatalf("the victim's lease: %+v\n%s", l, logText(lines))
	}

	attacker := registrytest.New(t)
	rawCfg, _ := img.RawConfigFile()
	rawMan, _ := img.RawManifest()
	repo, _ := name.NewRepository(attacker.Host + "/mallory/copy")
	if err := remote.WriteLayer(repo, static.NewLayer(rawCfg, types.DockerConfigJSON)); err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(repo.Tag("v1"), rawManifest(rawMan)); err != nil {
		t.Fatal(err)
	}
	l, lines, _ := pullRun(t, p, "mallory", attacker.Host+"/mallory/copy:v1", nil, "echo", "ran the victim's image")
	text := logText(lines)
	if l.State != protocol.LeaseFailed || strings.Contains(text, "is cached") || strings.Contains(text, "ran the victim's image") {
		t.Fatalf("the attacker's lease: %+v\n%s", l, text)
	}
}
