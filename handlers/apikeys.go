package handlers

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/web"
)

// bearerUser returns the user of the request's API key: nil and no error
// when the request carries no Authorization header at all, EUNAUTHORIZED
// when it carries anything that is not a live key.
func (s *Server) bearerUser(c *gin.Context) (*models.User, error) {
	h := c.GetHeader("Authorization")
	if h == "" {
		return nil, nil
	}
	// RFC 6750 makes the scheme name case-insensitive.
	scheme, key, ok := strings.Cut(h, " ")
	key = strings.TrimSpace(key)
	if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return nil, highway.Errorf(highway.EUNAUTHORIZED, "Send the API key as: Authorization: Bearer <key>.")
	}
	return s.accounts.AuthenticateAPIKey(c.Request.Context(), key)
}

// apiAuth admits only requests with a live API key and puts its user in
// the context, as loadSession does for pages, so requireRole works
// unchanged. Cookies are never looked at: the API has no CSRF defence, so
// a browser session must not be able to drive it.
func (s *Server) apiAuth(c *gin.Context) {
	u, err := s.bearerUser(c)
	if err == nil && u == nil {
		err = highway.Errorf(highway.EUNAUTHORIZED, "An API key is required: send Authorization: Bearer <key>. Create keys on your account page.")
	}
	if err != nil {
		s.apiAuthFail(c, err)
		return
	}
	// Answers to a key are that user's data: no shared cache may keep them.
	c.Header("Cache-Control", "no-store")
	c.Set(keyUser, u)
	c.Next()
}

// apiOptionalAuth is apiAuth for public routes: a valid key sets the user,
// and a request without one (or with one that does not authenticate)
// continues as a visitor. Only a failure to check the key is an error.
func (s *Server) apiOptionalAuth(c *gin.Context) {
	u, err := s.bearerUser(c)
	switch highway.ErrorCode(err) {
	case "":
		if u != nil {
			c.Header("Cache-Control", "no-store")
			c.Set(keyUser, u)
		}
	case highway.EUNAUTHORIZED:
		if !s.badKeyAllowed(c) {
			return
		}
	default:
		s.fail(c, err)
		c.Abort()
		return
	}
	c.Next()
}

// apiAuthFail answers 401 with the challenge RFC 6750 asks for; other
// errors (the database is down) keep their own status.
func (s *Server) apiAuthFail(c *gin.Context, err error) {
	if highway.ErrorCode(err) == highway.EUNAUTHORIZED {
		if c.GetHeader("Authorization") != "" && !s.badKeyAllowed(c) {
			return
		}
		c.Header("WWW-Authenticate", `Bearer realm="highway"`)
	}
	s.fail(c, err)
	c.Abort()
}

// apiUser is a user as the JSON API shows it.
type apiUser struct {
	ID    string   `json:"id"`
	Email string   `json:"email"`
	Roles []string `json:"roles"`
}

// apiMe answers who the key belongs to, so a script can check its key.
func (s *Server) apiMe(c *gin.Context) {
	u := currentUser(c)
	roles := u.Roles()
	if roles == nil {
		roles = []string{}
	}
	c.JSON(http.StatusOK, gin.H{"user": apiUser{ID: u.ID, Email: u.Email, Roles: roles}})
}

// apiKeyCreate creates a key and shows it on the account page, once.
func (s *Server) apiKeyCreate(c *gin.Context) {
	f := &web.APIKeyForm{}
	f.Bind(c.PostForm)
	var key string
	err := f.Validate()
	if err == nil {
		_, key, err = s.accounts.CreateAPIKey(c.Request.Context(), currentUser(c), f.Name)
	}
	if err != nil {
		s.formError(c, &f.Form, err, func(*web.Page) { s.renderAccount(c, statusOf(highway.ErrorCode(err)), f, "", "") })
		return
	}
	s.renderAccount(c, http.StatusCreated, &web.APIKeyForm{}, key, f.Name)
}

// apiKeyRevoke revokes one of the user's keys; someone else's key is 404.
func (s *Server) apiKeyRevoke(c *gin.Context) {
	if err := s.accounts.RevokeAPIKey(c.Request.Context(), currentUser(c), c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	s.setFlash(c, "success", "API key revoked. Requests with it are refused from now on.")
	c.Redirect(http.StatusSeeOther, "/account#api-keys")
}

// renderAccount renders the account page with its API keys; newKey is a
// just-created key to show this once.
func (s *Server) renderAccount(c *gin.Context, status int, keyForm *web.APIKeyForm, newKey, newKeyName string) {
	u := currentUser(c)
	keys, err := s.accounts.APIKeys(c.Request.Context(), u)
	if err != nil {
		s.fail(c, err)
		return
	}
	v := web.AccountView{
		Email: u.Email, Name: u.Name, Roles: u.Roles(), MemberSince: web.FormatTime(u.CreatedAt),
		MaxAPIKeys: accounts.MaxAPIKeysPerUser, KeyForm: keyForm, NewKey: newKey, NewKeyName: newKeyName,
	}
	for _, k := range keys {
		row := web.APIKeyRow{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Created: web.FormatTime(k.CreatedAt), LastUsed: "never"}
		if k.LastUsedAt != nil {
			row.LastUsed = web.FormatTime(*k.LastUsedAt)
		}
		v.APIKeys = append(v.APIKeys, row)
	}
	s.render(c, status, "Account", web.Account(s.page(c, "Account"), v))
}
