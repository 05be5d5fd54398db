package handlers

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/web"
)

func (s *Server) signupPage(c *gin.Context) {
	if currentUser(c) != nil {
		c.Redirect(http.StatusSeeOther, "/account")
		return
	}
	f := web.NewForm()
	f.Values["buyer"] = "on"
	s.render(c, http.StatusOK, "Sign up", web.Signup(s.page(c, "Sign up"), f))
}

func (s *Server) signupSubmit(c *gin.Context) {
	in := accounts.SignupInput{
		Email:    c.PostForm("email"),
		Name:     c.PostForm("name"),
		Password: c.PostForm("password"),
		Buyer:    c.PostForm("buyer") == "on",
		Provider: c.PostForm("provider") == "on",
	}
	_, token, err := s.accounts.Signup(c.Request.Context(), in, c.ClientIP(), c.Request.UserAgent())
	if err != nil {
		// Re-render with what the user typed, except the password.
		f := web.NewForm()
		f.Values["email"] = strings.TrimSpace(in.Email)
		f.Values["name"] = in.Name
		if in.Buyer {
			f.Values["buyer"] = "on"
		}
		if in.Provider {
			f.Values["provider"] = "on"
		}
		s.formError(c, f, err, func(p *web.Page) { s.render(c, statusOf(highway.ErrorCode(err)), "Sign up", web.Signup(p, f)) })
		return
	}
	s.startSession(c, token)
	s.setFlash(c, "success", "Welcome to Highway. Your account is ready.")
	c.Redirect(http.StatusSeeOther, "/account")
}

func (s *Server) loginPage(c *gin.Context) {
	next := safeNext(c.Query("next"))
	if currentUser(c) != nil {
		c.Redirect(http.StatusSeeOther, next)
		return
	}
	s.render(c, http.StatusOK, "Log in", web.Login(s.page(c, "Log in"), web.NewForm(), next))
}

func (s *Server) loginSubmit(c *gin.Context) {
	email := c.PostForm("email")
	next := safeNext(c.PostForm("next"))
	_, token, err := s.accounts.Login(c.Request.Context(), email, c.PostForm("password"), c.ClientIP(), c.Request.UserAgent())
	if err != nil {
		f := web.NewForm()
		f.Values["email"] = strings.TrimSpace(email)
		s.formError(c, f, err, func(p *web.Page) { s.render(c, statusOf(highway.ErrorCode(err)), "Log in", web.Login(p, f, next)) })
		return
	}
	// A session that was open in this browser ends: the new one has a
	// fresh id (no fixation), and the old one must not linger.
	if old := c.GetString(keyToken); old != "" {
		_ = s.accounts.Logout(c.Request.Context(), old)
	}
	s.startSession(c, token)
	c.Redirect(http.StatusSeeOther, next)
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
	if field := highway.ErrorField(err); field != "" {
		f.Errors[field] = highway.ErrorMessage(err)
	} else {
		f.Error = highway.ErrorMessage(err)
	}
	show(s.page(c, ""))
}
