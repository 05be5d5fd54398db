package handlers

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/models"
)

// The forwarded request on its way to the workload: which browser
// requests may act with the buyer's cookie, what of the marketplace's
// credentials is taken off, and the proxy that relays through tunnels.

// sameOriginUse reports whether a cookie-authenticated request may act for
// the buyer: one from the forward's own pages (Sec-Fetch-Site same-origin,
// and for a WebSocket an Origin equal to the host), a GET or HEAD
// navigation from anywhere (a link to the forward, the marketplace's
// redirect), or a client that sends no fetch metadata (not a browser, so
// no other site's page can have made it).
func sameOriginUse(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && r.Header.Get("Upgrade") != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return false
		}
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		r.Header.Get("Sec-Fetch-Mode") == "navigate" && r.Header.Get("Upgrade") == ""
}

// stripKeys removes every Authorization header that carries a Highway API
// key, as a Bearer token or inside Basic credentials, and keeps the
// workload's own.
func stripKeys(r *http.Request) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return
	}
	var keep []string
	for _, v := range vals {
		if !carriesKey(v) {
			keep = append(keep, v)
		}
	}
	r.Header.Del("Authorization")
	for _, v := range keep {
		r.Header.Add("Authorization", v)
	}
}

func carriesKey(v string) bool {
	prefix := strings.ToLower(accounts.APIKeyPrefix)
	if strings.Contains(strings.ToLower(v), prefix) {
		return true
	}
	if scheme, cred, ok := strings.Cut(strings.TrimSpace(v), " "); ok && strings.EqualFold(scheme, "Basic") {
		if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred)); err == nil {
			return strings.Contains(strings.ToLower(string(b)), prefix)
		}
	}
	return false
}

// stripCookie removes one cookie from a request's Cookie headers.
func stripCookie(r *http.Request, name string) {
	cs := r.Cookies()
	r.Header.Del("Cookie")
	var keep []string
	for _, c := range cs {
		if c.Name != name {
			keep = append(keep, c.Name+"="+c.Value)
		}
	}
	if len(keep) > 0 {
		r.Header.Set("Cookie", strings.Join(keep, "; "))
	}
}

type forwardKey struct{}

// newPortProxy relays to the workload through tunnels the broker dials.
// The transport keeps idle tunnels per forward, so a page's requests
// reuse connections instead of asking the agent for one each.
func (s *Server) newPortProxy() *httputil.ReverseProxy {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			slug, _, _ := net.SplitHostPort(addr)
			f, err := s.store.PortForwardBySlug(ctx, slug)
			if err != nil {
				return nil, err
			}
			return s.broker.DialForward(ctx, f)
		},
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // a model's first token may take long
		ForceAttemptHTTP2:     false,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			f := pr.In.Context().Value(forwardKey{}).(*models.PortForward)
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = f.Slug
			// The workload sees the host the browser used, so servers that
			// check Origin against Host (Jupyter) accept its WebSockets.
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			// A standby's note of which replica it was: the workload has no
			// business knowing the marketplace's internal addresses.
			pr.Out.Header.Del("X-Highway-Forwarded-By")
		},
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var te *broker.TunnelError
			switch {
			case r.Context().Err() != nil:
				w.WriteHeader(statusClientClosed)
			case errors.As(err, &te) && te.Timeout:
				portFail(w, http.StatusGatewayTimeout, "gateway_timeout", te.Message)
			case errors.As(err, &te):
				portFail(w, http.StatusBadGateway, "bad_gateway", te.Message)
			case highway.ErrorCode(err) != highway.EINTERNAL:
				portFail(w, statusOf(highway.ErrorCode(err)), highway.ErrorCode(err), highway.ErrorMessage(err))
			default:
				s.log.Warn("forwarded port", "host", r.Host, "err", err)
				portFail(w, http.StatusBadGateway, "bad_gateway", "The workload's port did not answer.")
			}
		},
	}
}
