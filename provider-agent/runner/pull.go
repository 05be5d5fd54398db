package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/highway-compute/highway/protocol"
)

// Defaults for a Puller's limits.
const (
	DefaultMaxImageBytes = 20 << 30 // compressed, as the registry lists it
	DefaultPullTimeout   = 15 * time.Minute
	// unpackFactor bounds an image's unpacked size by its listed size: a
	// few megabytes of gzip can unpack to terabytes, and the engine would
	// write every byte to the provider's disk. Real images unpack to 2–4
	// times their download.
	unpackFactor = 8
	maxLayers    = 256
)

// ErrImageTooLarge: the image is over the provider's limit.
var ErrImageTooLarge = errors.New("image over this provider's size limit")

// ErrRegistryAddress: the image's registry is on a loopback, private or
// link-local address, which a buyer must not make the agent reach.
var ErrRegistryAddress = errors.New("registry address not allowed")

// Puller fetches a workload's image from its registry itself, rather than
// leaving it to the engine, so that the agent can:
//   - refuse an image over the provider's limit before downloading it (the
//     manifest lists every size, and each blob is checked against it);
//   - refuse an image that unpacks to more than unpackFactor times that,
//     before the engine writes a byte of it;
//   - report progress for the lease page;
//   - use the buyer's credential for this lease alone, never the
//     operator's (an engine pull would use ~/.docker's logins: a buyer
//     could then run the provider's own private images);
//   - keep the buyer away from the provider's own network: registries on
//     loopback, private and link-local addresses are refused (checked at
//     connect time, so a DNS name that later resolves inward is refused
//     too) unless AllowPrivate;
//   - run exactly the image it checked: the container starts from the
//     image's id (its config digest), never from a tag that can move.
//
// Images are cached by that id in the engine: a second lease of the same
// image only fetches its manifest (which also proves the new buyer may
// read it), then starts at once.
type Puller struct {
	// Binary is the engine's CLI (load, image inspect); default "docker".
	Binary string
	// MaxBytes is the largest image, as listed; 0 is DefaultMaxImageBytes.
	MaxBytes int64
	// Timeout bounds one pull; 0 is DefaultPullTimeout.
	Timeout time.Duration
	// AllowPrivate lets registries on loopback and private addresses be
	// used: for tests and the dev marketplace's local registry only.
	AllowPrivate bool
	// TempDir holds downloads until the engine has loaded them; default
	// os.TempDir().
	TempDir string

	once      sync.Once
	transport http.RoundTripper
	mu        sync.Mutex
	inflight  map[string]*imageLock // per image id: one download at a time
	// verified maps repository@manifest-digest to the image id this agent
	// downloaded and checked for it. Only such a pair is a cache hit: an
	// image id alone is not (a buyer's own registry could serve a manifest
	// naming the id of another buyer's private image already cached here,
	// and answer for blobs it does not have); from the same repository,
	// the manifest fetched with this buyer's login is the proof of access.
	verified map[string]string
}

// imageLock is a per-image mutex that a cancelled pull stops waiting for.
type imageLock struct {
	ch   chan struct{}
	refs int
}

// Pulled is an image ready to run.
type Pulled struct {
	ID     string // the engine's image id (config digest hex): what to run
	Digest string // the manifest's digest
	Bytes  int64  // as listed
	Cached bool   // the engine had it already
}

// Pull fetches ref (a tag or a digest reference) with auth (nil:
// anonymous) and loads it into the engine, calling progress as bytes
// arrive (at most every 250 ms, and once at the end).
func (p *Puller) Pull(ctx context.Context, ref string, auth *protocol.RegistryAuth, progress func(protocol.PullProgress)) (Pulled, error) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultPullTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := name.ParseReference(ref)
	if err != nil {
		return Pulled{}, fmt.Errorf("image %q is not a valid reference: %w", ref, err)
	}
	a := authn.Anonymous
	if auth != nil {
		a = &authn.Basic{Username: auth.Username, Password: auth.Password}
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(a), remote.WithTransport(p.roundTripper()),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}), remote.WithUserAgent("highway-provider-agent")}
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return Pulled{}, pullError(ctx, ref, timeout, err)
	}
	img, err := desc.Image() // an index resolves to this machine's platform
	if err != nil {
		return Pulled{}, pullError(ctx, ref, timeout, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return Pulled{}, pullError(ctx, ref, timeout, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return Pulled{}, pullError(ctx, ref, timeout, err)
	}
	total, err := p.listedSize(ref, m)
	if err != nil {
		return Pulled{}, err
	}
	id := m.Config.Digest.Hex
	out := Pulled{ID: id, Digest: digest.String(), Bytes: total}
	report := func(done int64, cached bool) {
		if progress != nil {
			progress(protocol.PullProgress{Image: ref, Digest: out.Digest, Done: min(done, total), Total: total, Cached: cached})
		}
	}
	// One download per image at a time: a second lease of an image that
	// is still arriving waits for it (or for its own stop), then finds it
	// cached.
	key := r.Context().String() + "@" + out.Digest
	unlock, err := p.lock(ctx, id)
	if err != nil {
		return Pulled{}, pullError(ctx, ref, timeout, err)
	}
	defer unlock()
	if p.checked(key) == id && p.has(ctx, id) {
		out.Cached = true
		report(total, true)
		return out, nil
	}
	report(0, false)
	if err := p.fetch(ctx, r, img, total, func(done int64) { report(done, false) }); err != nil {
		return Pulled{}, pullError(ctx, ref, timeout, err)
	}
	if !p.has(ctx, id) {
		return Pulled{}, fmt.Errorf("the engine loaded %s but has no image %s", ref, id)
	}
	p.remember(key, id)
	report(total, false)
	return out, nil
}

// listedSize is the image's size as its manifest lists it (config and
// compressed layers), refused over the limit. The registry cannot then
// send more: every blob is read through a check of its listed size and
// digest.
func (p *Puller) listedSize(ref string, m *v1.Manifest) (int64, error) {
	limit := p.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxImageBytes
	}
	if len(m.Layers) > maxLayers {
		return 0, fmt.Errorf("%w: %s has %d layers (at most %d)", ErrImageTooLarge, ref, len(m.Layers), maxLayers)
	}
	if m.Config.Size < 0 {
		return 0, fmt.Errorf("image %s lists a negative size", ref)
	}
	total := m.Config.Size
	for _, l := range m.Layers {
		if l.Size < 0 {
			// Not skipped: a negative entry would hide the layers after
			// it from the sum.
			return 0, fmt.Errorf("image %s lists a negative layer size", ref)
		}
		if total += l.Size; total > limit {
			break
		}
	}
	if total > limit {
		return 0, fmt.Errorf("%w: %s is %s, over this provider's limit of %s", ErrImageTooLarge, ref, protocol.FormatBytes(total), protocol.FormatBytes(limit))
	}
	return total, nil
}

// fetch downloads img into a docker-archive tarball, checks how large it
// unpacks, and loads it into the engine.
func (p *Puller) fetch(ctx context.Context, r name.Reference, img v1.Image, total int64, progress func(int64)) error {
	f, err := os.CreateTemp(p.TempDir, "highway-pull-*.tar")
	if err != nil {
		return err
	}
	path := f.Name()
	defer os.Remove(path)
	cw := &countingWriter{w: f, progress: progress}
	// The tarball names the image by the reference the buyer gave, or
	// none for a digest reference; it is run by id either way.
	err = tarball.Write(r, img, cw)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := checkUnpacked(ctx, path, total*unpackFactor); err != nil {
		return err
	}
	load := exec.CommandContext(ctx, p.bin(), "load", "-i", path)
	load.Env = dockerEnv()
	if out, err := load.CombinedOutput(); err != nil {
		return fmt.Errorf("%s load: %w: %s", p.bin(), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// checkUnpacked reads each layer of the tarball at path unpacked, and
// fails once they come to more than limit bytes: a decompression bomb is
// refused before the engine unpacks it onto the disk.
func checkUnpacked(ctx context.Context, path string, limit int64) error {
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	var n int64
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return err
		}
		k, err := io.Copy(io.Discard, io.LimitReader(ctxReader{ctx, rc}, limit-n+1))
		rc.Close()
		if err != nil {
			return fmt.Errorf("unpack a layer: %w", err)
		}
		if n += k; n > limit {
			return fmt.Errorf("%w: it unpacks to more than %s (%d× its download)", ErrImageTooLarge, protocol.FormatBytes(limit), unpackFactor)
		}
	}
	return nil
}

// has reports whether the engine has the image with this id.
func (p *Puller) has(ctx context.Context, id string) bool {
	c := exec.CommandContext(ctx, p.bin(), "image", "inspect", "--format", "{{.Id}}", id)
	c.Env = dockerEnv()
	out, err := c.Output()
	return err == nil && strings.Contains(string(out), id)
}

// lock takes the per-image lock, or gives up when ctx ends (a stop of a
// lease waiting behind another's download of the same image).
func (p *Puller) lock(ctx context.Context, id string) (unlock func(), err error) {
	p.mu.Lock()
	if p.inflight == nil {
		p.inflight = map[string]*imageLock{}
	}
	l, ok := p.inflight[id]
	if !ok {
		l = &imageLock{ch: make(chan struct{}, 1)}
		p.inflight[id] = l
	}
	l.refs++
	p.mu.Unlock()
	release := func() {
		p.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(p.inflight, id) // the map holds only images in use
		}
		p.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

func (p *Puller) checked(key string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.verified[key]
}

func (p *Puller) remember(key, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.verified == nil {
		p.verified = map[string]string{}
	}
	p.verified[key] = id
}

// ctxReader ends a read once ctx has: unpacking a large image can take a
// while, and a stop must not wait for it.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

func (p *Puller) bin() string {
	if p.Binary == "" {
		return "docker"
	}
	return p.Binary
}

// roundTripper is one shared transport (connections are reused between
// pulls) whose dialer refuses inward addresses unless AllowPrivate.
func (p *Puller) roundTripper() http.RoundTripper {
	p.once.Do(func() {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		if !p.AllowPrivate {
			d.Control = refuseInward
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = d.DialContext
		t.Proxy = nil // the address checked must be the registry's own
		p.transport = t
	})
	return p.transport
}

// refuseInward is a dialer's Control: it sees the address actually dialled,
// after DNS, so no name can smuggle a connection inward.
func refuseInward(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s is not an IP address and port", ErrRegistryAddress, address)
	}
	if inward(ap.Addr()) {
		return fmt.Errorf("%w: %s is loopback, private, link-local or otherwise not public", ErrRegistryAddress, ap.Addr())
	}
	return nil
}

// notPublic are the special-purpose ranges (RFC 6890 and successors) that
// a stranger's image reference must not reach: loopback, private,
// carrier-grade NAT (tailnets, some clouds' metadata), link-local (cloud
// metadata at 169.254.169.254), benchmarking, reserved, multicast, and the
// IPv6 forms that carry an IPv4 address inside (NAT64, 6to4), which are
// judged by that address.
var notPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
		"192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "2001:db8::/32", "100::/64",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// inward reports whether a is not a public address.
func inward(a netip.Addr) bool {
	a = a.Unmap()
	switch {
	case nat64.Contains(a):
		b := a.As16()
		return inward(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(a):
		b := a.As16()
		return inward(netip.AddrFrom4([4]byte(b[2:6])))
	}
	for _, p := range notPublic {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// pullError says why a pull failed in words a buyer can act on.
func pullError(ctx context.Context, ref string, timeout time.Duration, err error) error {
	var te *transport.Error
	switch {
	case errors.Is(err, ErrRegistryAddress), errors.Is(err, ErrImageTooLarge):
		return fmt.Errorf("pull %s: %w", ref, err)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("pull %s: not done within this provider's limit of %s", ref, timeout)
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("pull %s: cancelled", ref)
	case errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden):
		return fmt.Errorf("pull %s: the registry refused access (%d); a private image needs the registry login with the order", ref, te.StatusCode)
	case errors.As(err, &te) && te.StatusCode == http.StatusNotFound:
		return fmt.Errorf("pull %s: the registry has no such image", ref)
	}
	return fmt.Errorf("pull %s: %w", ref, err)
}

// countingWriter counts bytes on their way to w and reports the count at
// most every 250 ms.
type countingWriter struct {
	w        io.Writer
	n        int64
	last     time.Time
	progress func(int64)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	if now := time.Now(); now.Sub(c.last) >= 250*time.Millisecond {
		c.last = now
		c.progress(c.n)
	}
	return n, err
}
