package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// apiClient calls the JSON API with a key.
type apiClient struct {
	t    testing.TB
	base string
	key  string
}

func (a apiClient) do(method, path string, body any, out any) int {
	a.t.Helper()
	return a.doWith(method, path, nil, body, out)
}

// doWith is do with extra request headers.
func (a apiClient) doWith(method, path string, header map[string]string, body any, out any) int {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+"/api/v1"+path, rd)
	req.Header.Set("Authorization", "Bearer "+a.key)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		// Kept in the log: a failing check decodes the error into its
		// success shape and would otherwise lose the message.
		a.t.Logf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			a.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}
