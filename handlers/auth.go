package handlers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/web"
)

func (s *Server) signupPage(c *gin.Context) {
	if currentUser(c) != nil {
		c.Redirect(http.StatusSeeOther, "/account")
		return
	}
	s.render(c, http.StatusOK, "Sign up", web.Signup(s.page(c, "Sign up"), web.NewSignupForm()))
}

func (s *Server) signupSubmit(c *gin.Context) {
	// The form re-renders what the user typed, except the password.
	f := &web.SignupForm{}
	f.Bind(c.PostForm)
	var u *models.User
	var token string
	err := f.Validate()
	if err == nil {
		in := accounts.SignupInput{Email: f.Email, Name: f.Name, Password: c.PostForm("password"), Buyer: f.Buyer, Provider: f.Provider}
		u, token, err = s.accounts.Signup(c.Request.Context(), in, c.ClientIP(), c.Request.UserAgent())
	}
	if err != nil {
		s.formError(c, &f.Form, err, func(p *web.Page) { s.render(c, statusOf(highway.ErrorCode(err)), "Sign up", web.Signup(p, f)) })
		return
	}
	s.startSession(c, token)
	s.setDevice(c, u.ID)
	s.setFlash(c, "success", "Welcome to Highway. Your account is ready.")
	c.Redirect(http.StatusSeeOther, "/account")
}

func (s *Server) loginPage(c *gin.Context) {
	next := safeNext(c.Query("next"))
	if currentUser(c) != nil {
		c.Redirect(http.StatusSeeOther, next)
		return
	}
	s.render(c, http.StatusOK, "Log in", web.Login(s.page(c, "Log in"), &web.LoginForm{}, next))
}

func (s *Server) loginSubmit(c *gin.Context) {
	next := safeNext(c.PostForm("next"))
	f := &web.LoginForm{}
	f.Bind(c.PostForm)
	var res *accounts.LoginResult
	err := f.Validate()
	if err == nil {
		res, err = s.accounts.Login(c.Request.Context(), accounts.LoginInput{Email: f.Email, Password: c.PostForm("password"),
			IP: c.ClientIP(), UserAgent: c.Request.UserAgent(), Device: s.deviceAccount(c)})
	}
	if err != nil {
		s.formError(c, &f.Form, err, func(p *web.Page) { s.render(c, statusOf(highway.ErrorCode(err)), "Log in", web.Login(p, f, next)) })
		return
	}
	// A session that was open in this browser ends: the new one has a
	// fresh id (no fixation), and the old one must not linger.
	if old := c.GetString(keyToken); old != "" {
		_ = s.accounts.Logout(c.Request.Context(), old)
	}
	s.startSession(c, res.Token)
	s.setDevice(c, res.User.ID)
	if f := res.Failed; f.Count > 0 {
		last := ""
		if f.LastAt != nil {
			last = fmt.Sprintf(" The last was at %s UTC from %s.", f.LastAt.UTC().Format("2006-01-02 15:04"), f.LastIP)
		}
		s.setFlash(c, "error", fmt.Sprintf("%d failed sign-in attempt(s) on your account since you last signed in.%s If that was not you, choose a stronger password.", f.Count, last))
	}
	c.Redirect(http.StatusSeeOther, next)
}

// The device cookie marks a browser that signed in to an account: when
// the account is under attack (many failures from anywhere), sign-ins from
// such a browser skip the slow lane, so its owner is not slowed down by
// the attack. It names the account and is signed with the server secret;
// it grants nothing else.
const (
	cookieDevice    = "hw_device"
	deviceCookieTTL = 400 * 24 * time.Hour
)

func (s *Server) setDevice(c *gin.Context, userID string) {
	s.setCookie(c, cookieDevice, userID+"."+s.deviceMAC(userID), deviceCookieTTL)
}

// deviceAccount returns the account the browser's device cookie names, if
// the cookie is valid ("" otherwise).
func (s *Server) deviceAccount(c *gin.Context) string {
	v, err := c.Cookie(cookieDevice)
	if err != nil {
		return ""
	}
	id, mac, ok := strings.Cut(v, ".")
	if !ok || id == "" || !hmac.Equal([]byte(mac), []byte(s.deviceMAC(id))) {
		return ""
	}
	return id
}

func (s *Server) deviceMAC(userID string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte("device\x00" + userID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) logout(c *gin.Context) {
	if err := s.accounts.Logout(c.Request.Context(), c.GetString(keyToken)); err != nil {
		s.fail(c, err)
		return
	}
	s.clearCookie(c, cookieSession)
	s.setFlash(c, "info", "You are logged out.")
	c.Redirect(http.StatusSeeOther, "/")
}

func (s *Server) startSession(c *gin.Context, token string) {
	s.setCookie(c, cookieSession, token, sessionCookieTTL)
}

// formError puts err on the form (next to its field, or over the form) and
// re-renders through show. Internal errors go to the error page instead.
func (s *Server) formError(c *gin.Context, f *web.Form, err error, show func(*web.Page)) {
	code := highway.ErrorCode(err)
	if code == highway.EINTERNAL {
		s.fail(c, err)
		return
	}
	if code == highway.ERATELIMITED {
		c.Header("Retry-After", itoa(highway.ErrorRetryAfter(err)))
	}
	f.Fail(highway.ErrorField(err), highway.ErrorMessage(err))
	show(s.page(c, ""))
}
