package presence

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/operate/realtime/gateway/apiclient"
	"github.com/operate/realtime/internal/testutil/wait"
)

// Requests that arrive while a read runs share the next read, never the
// running one (it started before they arrived).
func TestReadBatcher(t *testing.T) {
	var b readBatcher
	var rounds atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	fetch := func(_ context.Context, org string) ([]apiclient.PresenceUser, error) {
		n := rounds.Add(1)
		started <- struct{}{}
		if n == 1 {
			<-release
		}
		return []apiclient.PresenceUser{{UserID: org + "#" + strconv.Itoa(int(n))}}, nil
	}
	first := make(chan string, 1)
	go func() {
		u, err := b.read(context.Background(), "o1", fetch)
		if err != nil {
			t.Error(err)
		}
		first <- u[0].UserID
	}()
	<-started // round 1 runs, blocked
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := b.read(context.Background(), "o1", fetch)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = u[0].UserID
		}()
	}
	wait.For(t, "eight requests waiting for the next round", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.orgs["o1"].next) == 8
	})
	close(release)
	if u := <-first; u != "o1#1" {
		t.Fatalf("first request got %s", u)
	}
	wg.Wait()
	for i, u := range got {
		if u != "o1#2" {
			t.Fatalf("request %d got %s, want the second round's answer", i, u)
		}
	}
	if n := rounds.Load(); n != 2 {
		t.Fatalf("%d reads for nine requests, want 2", n)
	}
	wait.For(t, "the batcher idle", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.orgs) == 0
	})
}
