package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
)

// The public JSON API (../shared/API.md; docs/api.md): what every
// resource's *_api.go shares. Handlers parse, call the broker, and answer
// with the contract's shapes; amounts are decimal strings of uhwy.

// bindJSON decodes a request body strictly: unknown fields and trailing
// data are errors, so a typo in a field name is not silently ignored.
func bindJSON(c *gin.Context, v any) error {
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, 1<<20))
	if err != nil {
		return &highway.Error{Code: highway.EINVALID, Message: "Could not read the request body."}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := "The body is not valid JSON for this request: " + err.Error() + "."
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return &highway.Error{Code: highway.EINVALID, Field: ute.Field, Message: "Wrong type for " + ute.Field + "."}
		}
		return &highway.Error{Code: highway.EINVALID, Message: msg}
	}
	if dec.More() {
		return &highway.Error{Code: highway.EINVALID, Message: "Unexpected data after the JSON body."}
	}
	return nil
}

// amount parses an amount of uhwy given as a JSON string.
func amount(field, s string, allowZero bool) (highway.Amount, error) {
	if s == "" && allowZero {
		return 0, nil
	}
	v, ok := highway.ParseUhwy(s)
	if !ok || (v == 0 && !allowZero) {
		return 0, &highway.Error{Code: highway.EINVALID, Field: field, Message: "Must be a positive integer number of micro-units, as a string."}
	}
	return v, nil
}

func queryInt(c *gin.Context, name string) (int64, error) {
	v := c.Query(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, &highway.Error{Code: highway.EINVALID, Field: name, Message: name + " must be a non-negative integer."}
	}
	return n, nil
}

func listLimit(c *gin.Context) (int, error) {
	n, err := queryInt(c, "limit")
	if err != nil {
		return 0, err
	}
	if n == 0 {
		n = 50
	}
	if n > 500 {
		return 0, &highway.Error{Code: highway.EINVALID, Field: "limit", Message: "limit is at most 500."}
	}
	return int(n), nil
}

// loadFor loads the resource named by :id and lets the current user have
// it only if may says so; anyone else gets "not found", so ids cannot be
// probed. On failure it has answered and returns false.
func loadFor[T any](s *Server, c *gin.Context, load func(context.Context, string) (*T, error), may func(*models.User, *T) bool, notFound string) (*T, bool) {
	v, err := load(c.Request.Context(), c.Param("id"))
	if err == nil && !may(currentUser(c), v) {
		err = highway.Errorf(highway.ENOTFOUND, "%s", notFound)
	}
	if err != nil {
		s.fail(c, err)
		return nil, false
	}
	return v, true
}
