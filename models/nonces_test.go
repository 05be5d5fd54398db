package models_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/models/dbtest"
	"github.com/highway-compute/highway/protocol"
)

// TestSharedNonces is the replay attack across replicas: two stores on
// one database stand for two replicas; a nonce accepted through one is
// refused through the other, also when many replays race; an expired
// nonce may be used again, once; pruning removes only spent ones.
func TestSharedNonces(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		a, b := s.Nonces(), s.Nonces() // two replicas share only the database
		now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
		exp := now.Add(10 * time.Minute)
		if err := a.Use(ctx, "agent\x00n1", now, exp); err != nil {
			t.Fatal(err)
		}
		if err := b.Use(ctx, "agent\x00n1", now.Add(time.Second), exp); !errors.Is(err, protocol.ErrReplay) {
			t.Fatalf("replay at the other replica: %v, want ErrReplay", err)
		}
		// Racing replays of a fresh nonce: exactly one is accepted.
		var wg sync.WaitGroup
		var mu sync.Mutex
		accepted := 0
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st := a
				if i%2 == 1 {
					st = b
				}
				err := st.Use(ctx, "agent\x00n2", now, exp)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					accepted++
				case !errors.Is(err, protocol.ErrReplay):
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if accepted != 1 {
			t.Fatalf("16 racing uses of one nonce: %d accepted, want 1", accepted)
		}
		// Past its window the nonce may be used again, once.
		later := exp.Add(time.Second)
		if err := b.Use(ctx, "agent\x00n1", later, later.Add(10*time.Minute)); err != nil {
			t.Fatalf("expired nonce reused: %v", err)
		}
		if err := a.Use(ctx, "agent\x00n1", later, later.Add(10*time.Minute)); !errors.Is(err, protocol.ErrReplay) {
			t.Fatalf("the reused nonce replayed: %v, want ErrReplay", err)
		}
		for i := range 5 {
			if err := a.Use(ctx, fmt.Sprintf("old\x00%d", i), now, now.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.PruneNonces(ctx, now.Add(2*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if n != 5 {
			t.Fatalf("pruned %d, want the 5 spent ones", n)
		}
		if err := a.Use(ctx, "agent\x00n2", now.Add(2*time.Minute), exp); !errors.Is(err, protocol.ErrReplay) {
			t.Fatalf("a live nonce after pruning: %v, want ErrReplay", err)
		}
	})
}
