package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/web"
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

// portOpen is GET /ports/:slug/open: the buyer's session mints a
// one-minute token and sends the browser to the forward's host with it.
func (s *Server) portOpen(c *gin.Context) {
	slug := c.Param("slug")
	f, err := s.store.PortForwardBySlug(c.Request.Context(), slug)
	if err == nil && f.UserID != currentUser(c).ID {
		err = highway.Errorf(highway.ENOTFOUND, "No such forwarded port.")
	}
	if err == nil && f.ClosedAt != nil {
		err = highway.Errorf(highway.ECONFLICT, "This forward was closed (%s).", f.CloseReason)
	}
	if err == nil && s.portsDomain == "" {
		err = highway.Errorf(highway.ECONFLICT, "This marketplace serves no ports domain.")
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	next := c.Query("next")
	if safeNext(next) != next {
		next = "/"
	}
	c.Header("Referrer-Policy", "no-referrer")
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, s.PortURL(slug)+portLoginPath+"?t="+url.QueryEscape(s.portToken("login", slug, currentUser(c).ID, portLoginTTL))+
		"&next="+url.QueryEscape(next))
}

// portJSON is a forward as the API shows it.
type portJSON struct {
	Port        int        `json:"port"`
	URL         string     `json:"url"`
	CreatedAt   time.Time  `json:"created_at"`
	ClosedAt    *time.Time `json:"closed_at,omitempty"`
	CloseReason string     `json:"close_reason,omitempty"`
}

func (s *Server) portJSONOf(f *models.PortForward) portJSON {
	return portJSON{Port: f.Port, URL: s.PortURL(f.Slug) + "/", CreatedAt: f.CreatedAt.UTC(), ClosedAt: f.ClosedAt, CloseReason: f.CloseReason}
}

// apiPorts: GET /api/v1/leases/:id/ports → the lease's forwards, newest
// first.
func (s *Server) apiPorts(c *gin.Context) {
	fs, err := s.broker.Forwards(c.Request.Context(), currentUser(c).ID, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]portJSON, 0, len(fs))
	for i := range fs {
		out = append(out, s.portJSONOf(&fs[i]))
	}
	c.JSON(http.StatusOK, gin.H{"ports": out})
}

// apiOpenPort: POST /api/v1/leases/:id/ports {"port": 8888} → 201.
func (s *Server) apiOpenPort(c *gin.Context) {
	var req struct {
		Port int `json:"port"`
	}
	if err := bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	f, err := s.openPort(c, req.Port)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"port": s.portJSONOf(f)})
}

func (s *Server) openPort(c *gin.Context, port int) (*models.PortForward, error) {
	if s.portsDomain == "" {
		// Whose lease it is comes first: nobody else learns anything.
		if _, err := s.broker.Forwards(c.Request.Context(), currentUser(c).ID, c.Param("id")); err != nil {
			return nil, err
		}
		return nil, highway.Errorf(highway.ECONFLICT, "This marketplace serves no ports domain (HIGHWAY_PORTS_DOMAIN).")
	}
	return s.broker.OpenForward(c.Request.Context(), currentUser(c).ID, c.Param("id"), port)
}

// apiClosePort: DELETE /api/v1/leases/:id/ports/:port.
func (s *Server) apiClosePort(c *gin.Context) {
	port := pathPort(c)
	if err := s.broker.CloseForward(c.Request.Context(), currentUser(c).ID, c.Param("id"), port); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"closed": port})
}

// pathPort is the :port of a path; -1 when it is no number, which the
// broker refuses after checking whose lease it is.
func pathPort(c *gin.Context) int {
	p, err := strconv.Atoi(c.Param("port"))
	if err != nil {
		return -1
	}
	return p
}

// leasePortOpen is the lease page's form: POST /leases/:id/ports.
func (s *Server) leasePortOpen(c *gin.Context) {
	l, ok := s.buyerLease(c)
	if !ok {
		return
	}
	raw := strings.TrimSpace(c.PostForm("port"))
	port, err := strconv.Atoi(raw)
	if err != nil {
		err = &highway.Error{Code: highway.EINVALID, Field: "port", Message: "A port is a number from 1 to 65535."}
	} else {
		_, err = s.openPort(c, port)
	}
	if err != nil {
		if highway.ErrorCode(err) == highway.EINTERNAL {
			s.fail(c, err)
			return
		}
		s.renderLease(c, statusOf(highway.ErrorCode(err)), l, leaseForms{port: raw, portErr: highway.ErrorMessage(err)})
		return
	}
	s.setFlash(c, "success", "Port "+strconv.Itoa(port)+" is forwarded.")
	c.Redirect(http.StatusSeeOther, "/leases/"+l.ID+"#ports")
}

// leasePortClose: POST /leases/:id/ports/:port/close.
func (s *Server) leasePortClose(c *gin.Context) {
	l, ok := s.buyerLease(c)
	if !ok {
		return
	}
	port := pathPort(c)
	if err := s.broker.CloseForward(c.Request.Context(), currentUser(c).ID, l.ID, port); err != nil {
		if highway.ErrorCode(err) == highway.EINTERNAL {
			s.fail(c, err)
			return
		}
		s.renderLease(c, statusOf(highway.ErrorCode(err)), l, leaseForms{portErr: highway.ErrorMessage(err)})
		return
	}
	s.setFlash(c, "success", "Port "+strconv.Itoa(port)+" is no longer forwarded.")
	c.Redirect(http.StatusSeeOther, "/leases/"+l.ID+"#ports")
}

// portRows are a lease's forwards as its page shows them.
func (s *Server) portRows(fs []models.PortForward) []web.PortRow {
	out := make([]web.PortRow, 0, len(fs))
	for _, f := range fs {
		r := web.PortRow{Port: f.Port, Slug: f.Slug, URL: s.PortURL(f.Slug) + "/", Opened: web.FormatTime(f.CreatedAt), Open: f.ClosedAt == nil, Reason: f.CloseReason}
		out = append(out, r)
	}
	return out
}

// tunnelReadLimit bounds one frame of a tunnel: the agent sends what one
// read of the workload's socket returned.
const tunnelReadLimit = 1 << 20

// agentTunnel is the agent's end of a forwarded port's connection: GET
// /api/agent/v1/tunnels/:session, signed (broker.DialForward owns it).
func (s *Server) agentTunnel(c *gin.Context) { s.agentDialBack(c, true, tunnelReadLimit) }
