package handlers

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/web"
)

// statusClientClosed is logged for requests whose client disconnected.
const statusClientClosed = 499

// statusOf maps an error code to its HTTP status: the one place that does.
func statusOf(code string) int {
	switch code {
	case highway.EINVALID:
		return http.StatusUnprocessableEntity
	case highway.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case highway.EFORBIDDEN:
		return http.StatusForbidden
	case highway.ENOTFOUND:
		return http.StatusNotFound
	case highway.ECONFLICT, highway.ENOCAPACITY:
		return http.StatusConflict
	case highway.EINSUFFICIENTFUNDS:
		return http.StatusPaymentRequired
	case highway.ERATELIMITED:
		return http.StatusTooManyRequests
	default:
		return http.StatusInternalServerError
	}
}

var statusTitles = map[int]string{
	http.StatusBadRequest:          "Bad request",
	http.StatusUnauthorized:        "Please log in",
	http.StatusForbidden:           "Forbidden",
	http.StatusNotFound:            "Page not found",
	http.StatusMethodNotAllowed:    "Method not allowed",
	http.StatusConflict:            "Conflict",
	http.StatusUnprocessableEntity: "Check your input",
	http.StatusTooManyRequests:     "Too many requests",
	http.StatusInternalServerError: "Something went wrong",
}

// apiError is the JSON error body of the public API contract.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// fail answers err as a JSON error (API paths, or clients that ask for
// JSON) or an HTML error page. Internal errors are logged with the request
// id and shown as "internal error" only.
func (s *Server) fail(c *gin.Context, err error) {
	s.failStatus(c, statusOf(highway.ErrorCode(err)), err)
}

// failStatus is fail with an explicit status, for the few answers (405)
// that no error code names.
func (s *Server) failStatus(c *gin.Context, status int, err error) {
	// A client that went away mid-request is not a server fault: nobody is
	// left to answer, and it is logged at the request's level, not as an
	// error. 499 is the status nginx made the convention for it.
	if c.Request.Context().Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		c.AbortWithStatus(statusClientClosed)
		return
	}
	code := highway.ErrorCode(err)
	if code == highway.EINTERNAL {
		s.log.Error("internal error", "request_id", c.GetString(keyRequestID), "method", c.Request.Method,
			"path", c.Request.URL.Path, "err", err.Error())
	}
	if code == highway.ERATELIMITED {
		if ra := highway.ErrorRetryAfter(err); ra > 0 {
			c.Header("Retry-After", strconv.Itoa(ra))
		}
	}
	if wantsJSON(c) {
		c.AbortWithStatusJSON(status, apiError{Error: apiErrorBody{
			Code: code, Message: highway.ErrorMessage(err), Field: highway.ErrorField(err),
		}})
		return
	}
	title := statusTitles[status]
	if title == "" {
		title = http.StatusText(status)
	}
	s.render(c, status, title, web.ErrorPage(s.page(c, title), web.ErrorView{
		Status: status, Title: title, Message: highway.ErrorMessage(err), RequestID: c.GetString(keyRequestID),
	}))
	c.Abort()
}

func wantsJSON(c *gin.Context) bool {
	p := c.Request.URL.Path
	if strings.HasPrefix(p, "/api/") {
		return true
	}
	accept := c.GetHeader("Accept")
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}

func (s *Server) notFound(c *gin.Context) {
	s.fail(c, highway.Errorf(highway.ENOTFOUND, "There is nothing at this address."))
}

func (s *Server) methodNotAllowed(c *gin.Context) {
	s.failStatus(c, http.StatusMethodNotAllowed, &highway.Error{Code: highway.EINVALID, Message: "This address does not accept that method."})
}
