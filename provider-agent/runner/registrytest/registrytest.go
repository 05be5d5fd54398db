// Package registrytest is a real OCI registry on 127.0.0.1 and runnable
// test images for the tests that pull (the runner's, the marketplace's
// end-to-end): go-containerregistry's registry, with a request count, an
// optional login, and a gate that holds blob downloads.
package registrytest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Registry is a real OCI registry (go-containerregistry's, the
// distribution API over HTTP) on 127.0.0.1, with a request count, an
// optional login, and a gate that can hold blob downloads.
type Registry struct {
	// Host is host:port, for references.
	Host string
	// Requests and Blobs count requests, and blob downloads.
	Requests atomic.Int64
	Blobs    atomic.Int64

	mu         sync.Mutex
	user, pass string
	hold       chan struct{} // when set, blob downloads wait for it to close
}

// New starts a registry, closed when t ends.
func New(t testing.TB) *Registry {
	t.Helper()
	r := &Registry{}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.Requests.Add(1)
		r.mu.Lock()
		user, pass, hold := r.user, r.pass, r.hold
		r.mu.Unlock()
		if user != "" {
			if u, p, ok := req.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"login required"}]}`, http.StatusUnauthorized)
				return
			}
		}
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
			r.Blobs.Add(1)
			if hold != nil {
				select {
				case <-hold:
				case <-req.Context().Done():
					return
				}
			}
		}
		inner.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.Host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// Login makes the registry private.
func (r *Registry) Login(user, pass string) {
	r.mu.Lock()
	r.user, r.pass = user, pass
	r.mu.Unlock()
}

// HoldBlobs makes blob downloads wait until the returned func is called.
func (r *Registry) HoldBlobs() (release func()) {
	ch := make(chan struct{})
	r.mu.Lock()
	r.hold = ch
	r.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// Push uploads img as repo:tag and returns its reference by tag and by
// digest.
func (r *Registry) Push(t testing.TB, repo, tag string, img v1.Image) (byTag, byDigest string) {
	t.Helper()
	ref, err := name.ParseReference(r.Host + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	auth := authn.Anonymous
	if r.user != "" {
		auth = &authn.Basic{Username: r.user, Password: r.pass}
	}
	r.mu.Unlock()
	if err := remote.Write(ref, img, remote.WithAuth(auth)); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return ref.String(), r.Host + "/" + repo + "@" + d.String()
}

// BusyboxImage is a runnable image: static busybox and its applets, for
// linux on this machine's architecture, plus extra layers.
func BusyboxImage(t testing.TB, extra ...v1.Layer) v1.Image {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no busybox (Debian: busybox-static) to build a test image from")
	}
	raw, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"bin/busybox": raw}
	var links []string
	for _, app := range Applets {
		links = append(links, "bin/"+app)
	}
	layer := tarLayer(t, files, links...)
	img, err := mutate.AppendLayers(empty.Image, append([]v1.Layer{layer}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Cmd = []string{"sh"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Evict removes img from engine now, so the test starts without it
// cached, and again when the test ends.
func Evict(t testing.TB, engine string, img v1.Image) {
	t.Helper()
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	rmi := func() { _ = exec.CommandContext(context.Background(), engine, "rmi", "-f", cfg.Hex).Run() }
	rmi()
	t.Cleanup(rmi)
}

// Applets are the busybox commands the image links.
var Applets = []string{"sh", "echo", "sleep", "id", "hostname", "cat", "env", "true", "ls", "uname", "date", "seq"}

// tarLayer is a gzipped layer of files, with each link a symlink to
// busybox.
func tarLayer(t testing.TB, files map[string][]byte, links ...string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for path, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: path, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range links {
		if err := tw.WriteHeader(&tar.Header{Name: l, Linkname: "busybox", Mode: 0o777, Typeflag: tar.TypeSymlink}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return layer
}

// NoiseLayer is n bytes that do not compress, so the download is n bytes.
func NoiseLayer(t testing.TB, n int) v1.Layer {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return tarLayer(t, map[string][]byte{"noise": b})
}

// BombLayer is n zero bytes: it compresses to almost nothing.
func BombLayer(t testing.TB, n int) v1.Layer {
	t.Helper()
	return tarLayer(t, map[string][]byte{"zeros": make([]byte, n)})
}
