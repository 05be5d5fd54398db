package handlers

import (
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway/static"
)

// serveStatic serves embedded assets by content-hashed name with a one-year
// immutable cache: the name changes whenever the content does.
func serveStatic(c *gin.Context) {
	name := strings.TrimPrefix(c.Param("path"), "/")
	a, ok := static.Lookup(name)
	if !ok {
		c.String(http.StatusNotFound, "not found")
		return
	}
	h := c.Writer.Header()
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", a.ETag)
	ct := mime.TypeByExtension(path.Ext(a.Name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	if c.GetHeader("If-None-Match") == a.ETag {
		c.Status(http.StatusNotModified)
		return
	}
	c.Status(http.StatusOK)
	if c.Request.Method != http.MethodHead {
		_, _ = c.Writer.Write(a.Body)
	}
}
