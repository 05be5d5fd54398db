package handlers

import (
	"net/http"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway/web"
)

// page builds the layout's view-model for this request.
func (s *Server) page(c *gin.Context, title string) *web.Page {
	p := &web.Page{Title: title, Path: c.Request.URL.Path, CSRF: c.GetString(keyCSRF), DevMode: s.devMode}
	if u := currentUser(c); u != nil {
		p.Viewer = &web.Viewer{ID: u.ID, Email: u.Email, Name: u.Name, Buyer: u.IsBuyer, Provider: u.IsProvider, Admin: u.IsAdmin}
	}
	if f, ok := c.Get(keyFlash); ok {
		p.Flash = f.(*web.Flash)
	}
	p.LiveSince = c.GetUint64(keyLiveGen)
	return p
}

// render writes content inside the layout with status. Pages are never
// cached: they carry per-user data and CSRF tokens.
func (s *Server) render(c *gin.Context, status int, title string, content templ.Component) {
	p := s.page(c, title)
	if p.Viewer != nil {
		// The bell's count; a failure shows no count rather than no page.
		if n, err := s.store.UnreadNotifications(c.Request.Context(), p.Viewer.ID); err == nil {
			p.Viewer.Unread = n
		}
	}
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	c.Status(status)
	if c.Request.Method == http.MethodHead {
		return
	}
	if err := web.Layout(p, content).Render(c.Request.Context(), c.Writer); err != nil {
		s.log.Error("render", "request_id", c.GetString(keyRequestID), "err", err)
	}
}

// wantsFragment: the live script asks for just the part that changes.
func wantsFragment(c *gin.Context) bool { return c.Query("fragment") == "1" }

// renderFragment writes a component without the layout.
func (s *Server) renderFragment(c *gin.Context, status int, content templ.Component) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	c.Status(status)
	if err := content.Render(c.Request.Context(), c.Writer); err != nil {
		s.log.Error("render fragment", "request_id", c.GetString(keyRequestID), "err", err)
	}
}

// fieldOrForm puts err beside field when the form shows that field, else
// over the form, so no message is lost on a field the page does not have.
func fieldOrForm(f *web.Form, shown []string) {
	for field, msg := range f.Errors {
		if !contains(shown, field) {
			delete(f.Errors, field)
			if f.Error == "" {
				f.Error = msg
			}
		}
	}
}
