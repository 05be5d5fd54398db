package handlers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
)

// csrf implements the HMAC-signed double-submit pattern (OWASP): every
// browser gets a random hw_csrf cookie; forms carry
// HMAC(secret, cookie | session token). A cross-site page can neither read
// the cookie nor forge the MAC. Binding the session token means the token a
// visitor saw before logging in stops working after login (login CSRF and
// fixation both fail). Checking Origin too rejects cross-site posts even
// before the token is looked at.
func (s *Server) csrf(c *gin.Context) {
	seed, err := c.Cookie(cookieCSRF)
	if err != nil || len(seed) < 32 || len(seed) > 64 {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		seed = base64.RawURLEncoding.EncodeToString(b)
		if isSafeMethod(c.Request.Method) {
			s.setCookie(c, cookieCSRF, seed, 365*24*time.Hour)
		} else {
			// A state-changing request without the cookie cannot carry a
			// valid token.
			s.csrfReject(c)
			return
		}
	}
	expected := s.csrfToken(seed, c.GetString(keyToken))
	c.Set(keyCSRF, expected)
	if isSafeMethod(c.Request.Method) {
		c.Next()
		return
	}
	if !s.sameOrigin(c.Request) {
		s.csrfReject(c)
		return
	}
	got := c.GetHeader("X-CSRF-Token")
	if got == "" {
		got = c.PostForm("csrf_token")
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(expected)) != 1 {
		s.csrfReject(c)
		return
	}
	c.Next()
}

func (s *Server) csrfToken(seed, session string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte("csrf\x00"))
	m.Write([]byte(seed))
	m.Write([]byte{0})
	m.Write([]byte(session))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sameOrigin rejects a request whose Origin header names another host.
// Browsers send Origin on every cross-site POST; a missing header (old
// clients, some same-origin navigations) falls through to the token check.
func (s *Server) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return o == ""
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (s *Server) csrfReject(c *gin.Context) {
	s.fail(c, highway.Errorf(highway.EFORBIDDEN, "Your form expired or came from another site. Go back, reload the page and try again."))
	c.Abort()
}

func isSafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}
