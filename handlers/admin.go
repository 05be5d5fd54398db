package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/web"
)

func (s *Server) adminUsers(c *gin.Context) {
	ctx := c.Request.Context()
	users, next, err := s.store.ListUsers(ctx, c.Query("cursor"), 50)
	if err != nil {
		s.fail(c, err)
		return
	}
	total, err := s.store.CountUsers(ctx)
	if err != nil {
		s.fail(c, err)
		return
	}
	me := currentUser(c)
	rows := make([]web.UserRow, 0, len(users))
	for _, u := range users {
		rows = append(rows, web.UserRow{
			ID: u.ID, Email: u.Email, Name: u.Name, Buyer: u.IsBuyer, Provider: u.IsProvider, Admin: u.IsAdmin,
			Disabled: u.Disabled(), Self: u.ID == me.ID, Created: web.FormatTime(u.CreatedAt),
		})
	}
	s.render(c, http.StatusOK, "Users", web.AdminUsers(s.page(c, "Users"), rows, total, next))
}

func (s *Server) adminSetRoles(c *gin.Context) {
	err := s.accounts.SetRoles(c.Request.Context(), currentUser(c), c.Param("id"),
		c.PostForm("buyer") == "on", c.PostForm("provider") == "on", c.PostForm("admin") == "on")
	s.adminDone(c, err, "Roles updated.")
}

func (s *Server) adminSetDisabled(c *gin.Context) {
	var disabled bool
	switch c.PostForm("disabled") {
	case "true":
		disabled = true
	case "false":
	default:
		s.fail(c, highway.FieldError("disabled", "disabled must be true or false."))
		return
	}
	msg := "User enabled."
	if disabled {
		msg = "User disabled; their sessions are closed."
	}
	s.adminDone(c, s.accounts.SetDisabled(c.Request.Context(), currentUser(c), c.Param("id"), disabled), msg)
}

// adminDone redirects back to the users page with the outcome as a flash;
// user mistakes (conflict, not found) are flashed, internal errors are not.
func (s *Server) adminDone(c *gin.Context, err error, okMsg string) {
	switch highway.ErrorCode(err) {
	case "":
		s.setFlash(c, "success", okMsg)
	case highway.EINTERNAL, highway.EFORBIDDEN:
		s.fail(c, err)
		return
	default:
		s.setFlash(c, "error", highway.ErrorMessage(err))
	}
	c.Redirect(http.StatusSeeOther, "/admin/users")
}
