package handlers

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
)

// Context keys.
const (
	keyRequestID = "request_id"
	keyUser      = "user"
	keyCSRF      = "csrf"
	keyFlash     = "flash"
	keyToken     = "session_token"
	keyLiveGen   = "live_generation"
)

// Cookie names.
const (
	cookieSession = "hw_session"
	cookieCSRF    = "hw_csrf"
	cookieFlash   = "hw_flash"
)

// maxFormBytes bounds request bodies of pages; API bodies have their own
// limits where they are decoded.
const maxFormBytes = 1 << 20

// requestID tags every request with an id for logs and error pages. A sane
// incoming X-Request-ID (from a load balancer) is kept so logs line up.
func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-ID")
	if !validRequestID(id) {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	c.Set(keyRequestID, id)
	c.Header("X-Request-ID", id)
	c.Next()
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
		if !ok {
			return false
		}
	}
	return true
}

// recoverer turns a panic into a logged 500 with the request id; the user
// sees "internal error", never the panic.
func (s *Server) recoverer(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if err, ok := r.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(r)
			}
			s.log.Error("panic", "request_id", c.GetString(keyRequestID), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			if !c.Writer.Written() {
				s.fail(c, fmt.Errorf("panic: %v", r))
			}
			c.Abort()
		}
	}()
	c.Next()
}

// observe logs each request and records its metrics.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	d := time.Since(start)
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	s.metrics.observe(c.Request.Method, route, status, d)
	level := slogLevelFor(status, route)
	s.log.Log(c.Request.Context(), level, "request",
		"method", c.Request.Method, "route", route, "path", c.Request.URL.Path,
		"status", status, "duration_ms", d.Milliseconds(), "ip", c.ClientIP(),
		"request_id", c.GetString(keyRequestID))
}

func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'")
	c.Next()
}

// liveGeneration notes the market's change count before a live page
// reads anything, so the page's event stream can tell whether a change
// slipped in between the render and the stream opening.
func (s *Server) liveGeneration(c *gin.Context) {
	c.Set(keyLiveGen, s.broker.Generation())
	c.Next()
}

func limitBody(c *gin.Context) {
	if c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxFormBytes)
	}
	c.Next()
}

// loadSession puts the logged-in user, if any, in the context. A dead
// session cookie is cleared so the browser stops sending it.
func (s *Server) loadSession(c *gin.Context) {
	token, err := c.Cookie(cookieSession)
	if err != nil || token == "" {
		c.Next()
		return
	}
	u, err := s.accounts.Authenticate(c.Request.Context(), token)
	switch highway.ErrorCode(err) {
	case "":
		c.Set(keyUser, u)
		c.Set(keyToken, token)
	case highway.EUNAUTHORIZED:
		s.clearCookie(c, cookieSession)
	default:
		s.fail(c, err)
		c.Abort()
		return
	}
	c.Next()
}

// currentUser returns the logged-in user or nil.
func currentUser(c *gin.Context) *models.User {
	if v, ok := c.Get(keyUser); ok {
		return v.(*models.User)
	}
	return nil
}

// requireUser sends visitors to the login page and back afterwards.
func (s *Server) requireUser(c *gin.Context) {
	if currentUser(c) != nil {
		c.Next()
		return
	}
	next := c.Request.URL.RequestURI()
	c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(next))
	c.Abort()
}

// requireRole answers 403 to a user without role.
func (s *Server) requireRole(role string) gin.HandlerFunc {
	return func(c *gin.Context) {
		u := currentUser(c)
		if u == nil || !u.HasRole(role) {
			s.fail(c, highway.Errorf(highway.EFORBIDDEN, "You do not have access to this page."))
			c.Abort()
			return
		}
		c.Next()
	}
}

// setCookie writes an HttpOnly, SameSite=Lax cookie, Secure when the
// public URL is https.
func (s *Server) setCookie(c *gin.Context, name, value string, maxAge time.Duration) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(maxAge / time.Second),
		HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) clearCookie(c *gin.Context, name string) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secureCookies, SameSite: http.SameSiteLaxMode,
	})
}

// safeNext accepts only a same-origin path as a post-login destination, so
// the login page cannot be used as an open redirect. It judges the string
// as a browser would read it: browsers drop tabs and newlines anywhere in
// a URL and leading or trailing spaces and controls, and treat a
// backslash as a slash, so "/\t/evil.example" and " //evil.example" are
// "//evil.example", a host. Rather than normalise and risk disagreeing
// with some browser, anything a browser would rewrite is refused.
func safeNext(next string) string {
	const home = "/account"
	if len(next) > 2048 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return home
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return home
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return home
	}
	return next
}

// slogLevelFor keeps probes and scrapes out of the default log and makes
// server errors stand out.
func slogLevelFor(status int, route string) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelError
	case route == "/healthz" || route == "/readyz" || route == "/metrics" || route == "/static/*path":
		return slog.LevelDebug
	default:
		return slog.LevelInfo
	}
}
