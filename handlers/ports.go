package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/accounts"
)

// Forwarded ports (broker/forward.go). Each forward is served at its own
// origin, <slug>.<ports domain>, never under the marketplace's: the pages
// there are the workload's (and whoever runs the machine can change
// them), so they must not run script where the marketplace's cookies and
// pages live. The ports host authenticates every request itself: a
// Bearer API key (scripts, curl), or its own cookie, which the buyer's
// marketplace session mints through a short signed redirect. Neither ever
// reaches the workload. The production rule that the ports domain is a
// different registrable domain from the marketplace's (so its pages are
// cross-site too, and SameSite cookies hold) is checked in cmd/highway.

const (
	// portCookie is the ports host's own session, bound to one forward.
	portCookie = "hw_port"
	// portCookieTTL is how long a browser keeps reaching a forward
	// before it goes back through the marketplace's session.
	portCookieTTL = 12 * time.Hour
	// portLoginPath is where the marketplace's redirect lands on a
	// forward's host with a one-minute token for its cookie. It is
	// answered by the marketplace, never proxied.
	portLoginPath = "/__highway/login"
	portLoginTTL  = time.Minute
)

// hostSplit sends the ports domain's hosts to the forwards and every
// other host to the marketplace.
type hostSplit struct {
	s    *Server
	site http.Handler
}

func (h *hostSplit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.s.onPortsHost(r.Host) {
		h.s.servePort(w, r)
		return
	}
	h.site.ServeHTTP(w, r)
}

// hostName is a Host header without its port, lower case, without a
// trailing dot.
func hostName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// onPortsHost: a forward's host, or the bare ports domain, which nothing
// serves (the marketplace answering there would make its pages same-site
// with every workload).
func (s *Server) onPortsHost(host string) bool {
	h := hostName(host)
	return s.portsDomain != "" && (h == s.portsDomain || strings.HasSuffix(h, "."+s.portsDomain))
}

// portSlug is the forward a ports host names: one label, as newSlug makes.
func (s *Server) portSlug(host string) (string, bool) {
	slug, ok := strings.CutSuffix(hostName(host), "."+s.portsDomain)
	if !ok || len(slug) != 26 {
		return "", false
	}
	for i := 0; i < len(slug); i++ {
		if c := slug[i]; (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return "", false
		}
	}
	return slug, true
}

// PortURL is where forward slug is reached: the marketplace's scheme and
// port on the forward's own host.
func (s *Server) PortURL(slug string) string {
	if s.portsDomain == "" {
		return ""
	}
	u, err := url.Parse(s.baseURL)
	if err != nil {
		return ""
	}
	host := slug + "." + s.portsDomain
	if p := u.Port(); p != "" {
		host = net.JoinHostPort(host, p)
	}
	return u.Scheme + "://" + host
}

// portMAC signs what a token or cookie says: which purpose, forward,
// user and until when.
func (s *Server) portMAC(purpose, slug, userID string, exp int64) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte("highway port " + purpose + "\x00" + slug + "\x00" + userID + "\x00" + strconv.FormatInt(exp, 10)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// portToken is "<user>.<unix expiry>.<mac>".
func (s *Server) portToken(purpose, slug, userID string, ttl time.Duration) string {
	exp := s.now().Add(ttl).Unix()
	return userID + "." + strconv.FormatInt(exp, 10) + "." + s.portMAC(purpose, slug, userID, exp)
}

// portTokenUser is the user a token or cookie names, or "" when it is
// not one for purpose and slug, or has expired.
func (s *Server) portTokenUser(purpose, slug, tok string) string {
	user, rest, ok1 := strings.Cut(tok, ".")
	exps, mac, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return ""
	}
	exp, err := strconv.ParseInt(exps, 10, 64)
	if err != nil || s.now().Unix() > exp {
		return ""
	}
	if !hmac.Equal([]byte(mac), []byte(s.portMAC(purpose, slug, user, exp))) {
		return ""
	}
	return user
}

// portFail answers on a ports host, where the marketplace's pages do not
// render: JSON with the API's error shape.
func portFail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="highway"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apiError{Error: apiErrorBody{Code: code, Message: msg}})
}

// servePort answers a request on a forward's host: its login redirect,
// or, for the forward's buyer only, the workload's answer.
func (s *Server) servePort(w http.ResponseWriter, r *http.Request) {
	slug, ok := s.portSlug(r.Host)
	if !ok {
		portFail(w, http.StatusNotFound, highway.ENOTFOUND, "No forwarded port here.")
		return
	}
	if r.URL.Path == portLoginPath {
		s.portLogin(w, r, slug)
		return
	}
	ctx := r.Context()
	f, err := s.store.PortForwardBySlug(ctx, slug)
	if err != nil {
		s.portStoreFail(w, err)
		return
	}
	userID, byKey, err := s.portUser(r, slug)
	if err != nil {
		s.portStoreFail(w, err)
		return
	}
	switch {
	case userID == "" && f.ClosedAt == nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		strings.Contains(r.Header.Get("Accept"), "text/html") && r.Header.Get("Upgrade") == "":
		// A browser without the cookie goes through the marketplace's
		// session (its login page if it has none) and comes back.
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.Redirect(w, r, s.baseURL+"/ports/"+slug+"/open?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	case userID == "":
		portFail(w, http.StatusUnauthorized, highway.EUNAUTHORIZED,
			"Open this port from its lease page, or send Authorization: Bearer <API key> of the lease's buyer.")
		return
	case userID != f.UserID:
		// Another user's forward is answered as no forward at all.
		portFail(w, http.StatusNotFound, highway.ENOTFOUND, "No forwarded port here.")
		return
	case f.ClosedAt != nil:
		portFail(w, http.StatusGone, highway.ECONFLICT, "This forward was closed ("+f.CloseReason+"); forward the port again from the lease page.")
		return
	case !byKey && !sameOriginUse(r):
		// Every forward shares the ports domain, so to a browser they are
		// one site: the cookie alone would let a page on another forward
		// (or anywhere) post to this one. It counts for this forward's own
		// pages and for plain navigations to it.
		portFail(w, http.StatusForbidden, highway.EFORBIDDEN, "A request from another site cannot use this forward's login; open the port from its lease page.")
		return
	}
	// Nothing of the marketplace's credentials travels to the provider's
	// machine: any Highway key in any Authorization header, and the ports
	// cookie.
	stripKeys(r)
	stripCookie(r, portCookie)
	s.portProxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, forwardKey{}, f)))
}

func (s *Server) portStoreFail(w http.ResponseWriter, err error) {
	code := highway.ErrorCode(err)
	if code == highway.EINTERNAL {
		s.log.Error("forwarded port", "err", err)
	}
	portFail(w, statusOf(code), code, highway.ErrorMessage(err))
}

// portUser is who the request comes from: a Bearer API key (byKey), the
// forward's cookie, or nobody ("").
func (s *Server) portUser(r *http.Request, slug string) (userID string, byKey bool, err error) {
	for _, h := range r.Header.Values("Authorization") {
		if scheme, key, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") &&
			strings.HasPrefix(strings.TrimSpace(key), accounts.APIKeyPrefix) {
			u, err := s.accounts.AuthenticateAPIKey(r.Context(), strings.TrimSpace(key))
			if highway.ErrorCode(err) == highway.EUNAUTHORIZED {
				return "", false, nil
			}
			if err != nil {
				return "", false, err
			}
			return u.ID, true, nil
		}
		// Any other Authorization is the workload's own (a Jupyter token).
	}
	// Every hw_port cookie is tried: a page on another forward can set one
	// for the whole ports domain with a longer path, which the browser
	// then sends first, to lock the buyer out.
	for _, c := range r.Cookies() {
		if c.Name == portCookie {
			if u := s.portTokenUser("cookie", slug, c.Value); u != "" {
				// The cookie lasts hours; an account disabled meanwhile
				// loses the forward now, as its session and keys do.
				usr, err := s.store.UserByID(r.Context(), u)
				if highway.ErrorCode(err) == highway.ENOTFOUND || err == nil && usr.Disabled() {
					return "", false, nil
				}
				if err != nil {
					return "", false, err
				}
				return u, false, nil
			}
		}
	}
	return "", false, nil
}

// portLogin trades the marketplace's one-minute token for the forward's
// cookie and goes on to the page the buyer asked for.
func (s *Server) portLogin(w http.ResponseWriter, r *http.Request, slug string) {
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
	user := s.portTokenUser("login", slug, r.URL.Query().Get("t"))
	if user == "" {
		portFail(w, http.StatusUnauthorized, highway.EUNAUTHORIZED, "This link has expired; open the port again from its lease page.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: portCookie, Value: s.portToken("cookie", slug, user, portCookieTTL), Path: "/",
		MaxAge: int(portCookieTTL / time.Second), HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteLaxMode})
	next := r.URL.Query().Get("next")
	if safeNext(next) != next {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}
