package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway/web"
)

// sessionCookieTTL matches the server-side session lifetime; the server's
// expiry is what counts, the cookie's is only a hint to the browser.
const sessionCookieTTL = 14 * 24 * time.Hour

func itoa(n int) string { return strconv.Itoa(n) }

func (s *Server) accountPage(c *gin.Context) {
	s.renderAccount(c, http.StatusOK, &web.APIKeyForm{}, "", "")
}
