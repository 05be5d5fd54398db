package web

import (
	"context"
	"strings"
	"testing"
)

// TestLeasePullProgress: while the image arrives the lease page shows a
// progress bar with the bytes of the listed size; once it is in, the bar
// goes and the digest that runs is shown.
func TestLeasePullProgress(t *testing.T) {
	render := func(v LeaseView) string {
		var b strings.Builder
		if err := LeaseLive(v).Render(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	v := LeaseView{ID: "l1", Status: "active", WorkloadStatus: "starting",
		Pull: &PullView{Done: 13_700_000, Total: 27_400_000, Digest: "sha256:abc"}}
	html := render(v)
	for _, want := range []string{`<progress id="lease-pull-bar" value="13700000" max="27400000">`, "13.7 MB of 27.4 MB (50%)", "sha256:abc"} {
		if !strings.Contains(html, want) {
			t.Fatalf("no %q in\n%s", want, html)
		}
	}
	v.Pull.Done = v.Pull.Total
	if html = render(v); strings.Contains(html, "<progress") || !strings.Contains(html, "sha256:abc") {
		t.Fatalf("a finished pull still shows its bar, or no digest:\n%s", html)
	}
	v.Pull = &PullView{Done: 5, Total: 5, Cached: true, Digest: "sha256:def"}
	if html = render(v); strings.Contains(html, "<progress") {
		t.Fatal("a cached image shows a bar")
	}
}
