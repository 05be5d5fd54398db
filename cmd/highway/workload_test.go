//go:build !race

package main

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/coder/websocket"
)

// serveTestWorkload is the workload the forwarded-port tests rent: this
// test binary re-run by the exec runner, serving HTTP on addr. It answers
// what it was sent (so tests see which headers reached the workload), a
// large body, and a WebSocket echo.
func serveTestWorkload(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"path": r.URL.RequestURI(), "host": r.Host, "authorization": r.Header.Get("Authorization"),
			"cookie": r.Header.Get("Cookie"), "forwarded_host": r.Header.Get("X-Forwarded-Host"), "method": r.Method,
		})
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("0123456789abcdef", 1<<16))) // 1 MiB
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer func() { _ = c.CloseNow() }()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	})
	_ = http.ListenAndServe(addr, mux) //nolint:gosec // a test's workload
}
