package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway/web"
)

func (s *Server) home(c *gin.Context) {
	s.render(c, http.StatusOK, "", web.Home(s.page(c, "")))
}
