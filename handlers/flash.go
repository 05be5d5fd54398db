package handlers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway/web"
)

// Flash messages ride in a signed cookie for exactly one page view, so they
// survive a redirect and work for visitors without a session. The MAC stops
// anyone else from planting text on our pages.

func (s *Server) setFlash(c *gin.Context, kind, text string) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(kind + "\x00" + text))
	s.setCookie(c, cookieFlash, payload+"."+s.flashMAC(payload), time.Minute)
}

func (s *Server) flashMAC(payload string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte("flash\x00" + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// loadFlash reads and clears the flash cookie on page views.
func (s *Server) loadFlash(c *gin.Context) {
	v, err := c.Cookie(cookieFlash)
	if err != nil || v == "" || c.Request.Method != http.MethodGet {
		c.Next()
		return
	}
	s.clearCookie(c, cookieFlash)
	payload, mac, ok := strings.Cut(v, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(s.flashMAC(payload))) {
		c.Next()
		return
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		c.Next()
		return
	}
	kind, text, _ := strings.Cut(string(raw), "\x00")
	switch kind {
	case "info", "success", "error":
		c.Set(keyFlash, &web.Flash{Kind: kind, Text: text})
	}
	c.Next()
}
