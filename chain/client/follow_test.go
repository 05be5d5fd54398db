package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestFollowReturnsWhenTheNodeDies: the node's websocket drops while a
// follow session is open, and the session's next request fails. Follow
// must still return once its context ends. It used to unsubscribe with
// a background context on the dead websocket, which waits for good, so
// stopping `highway dev` after its chain died hung.
func TestFollowReturnsWhenTheNodeDies(t *testing.T) {
	var (
		mu       sync.Mutex
		conns    []*websocket.Conn
		refuseWS bool
	)
	statusAsked := make(chan struct{}, 1)
	release := make(chan struct{})
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/websocket" {
			mu.Lock()
			refuse := refuseWS
			mu.Unlock()
			if refuse {
				http.Error(w, "node is down", http.StatusServiceUnavailable)
				return
			}
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				for {
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
				}
			}()
			return
		}
		// JSON-RPC over HTTP (status, blocks): held until the websocket is
		// gone, then refused, as from a node that died.
		select {
		case statusAsked <- struct{}{}:
		default:
		}
		<-release
		http.Error(w, "node is down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	c := &Client{cfg: Config{RPC: srv.URL}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- c.Follow(ctx, 1, FollowOptions{Poll: 100 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}, func(Block) error { return nil })
	}()
	select {
	case <-statusAsked:
	case <-time.After(10 * time.Second):
		t.Fatal("the follower never asked for the node's status")
	}
	// The node dies: its websocket closes and will not come back.
	mu.Lock()
	refuseWS = true
	for _, conn := range conns {
		_ = conn.Close()
	}
	mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	close(release)
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Follow ended with %v, want its context's end", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow still runs 10 s after its context ended: it waits on the dead node")
	}
}

// TestFollowMovesToTheNextNode: the first node in the list is down; the
// follower goes on to the second rather than retrying the dead one.
func TestFollowMovesToTheNextNode(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // nothing listens there any more
	asked := make(chan struct{}, 1)
	up := websocket.Upgrader{}
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/websocket" {
			if c, err := up.Upgrade(w, r, nil); err == nil {
				go func() {
					defer c.Close()
					for {
						if _, _, err := c.ReadMessage(); err != nil {
							return
						}
					}
				}()
			}
			return
		}
		select {
		case asked <- struct{}{}:
		default:
		}
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer live.Close()
	c := &Client{cfg: Config{RPC: deadURL + ", " + live.URL}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- c.Follow(ctx, 1, FollowOptions{Poll: 100 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}, func(Block) error { return nil })
	}()
	select {
	case <-asked:
	case <-time.After(10 * time.Second):
		t.Fatal("the follower never reached the second node")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow ended with %v, want its context's end", err)
	}
}
