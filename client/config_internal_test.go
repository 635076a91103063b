package client

import (
	"testing"
	"time"
)

func TestBackoffGrowsToItsMaximum(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.5}.withDefaults()
	// r = 0.5 is the middle of the jitter: no spread.
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for n, w := range want {
		if got := b.delay(n, 0.5); got != w*time.Millisecond {
			t.Errorf("delay(%d) = %v, want %v", n, got, w*time.Millisecond)
		}
	}
	// The jitter spreads each delay by ±50 %, never past Max.
	if lo, hi := b.delay(1, 0), b.delay(1, 0.999999); lo != 100*time.Millisecond || hi < 299*time.Millisecond || hi > 300*time.Millisecond {
		t.Errorf("delay(1) spreads over [%v, %v], want [100ms, 300ms]", lo, hi)
	}
	if got := b.delay(10, 0.999999); got != time.Second {
		t.Errorf("delay(10) with the largest jitter = %v, want Max", got)
	}
	if d := (Backoff{}).withDefaults(); d != (Backoff{Initial: time.Second, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.5}) {
		t.Errorf("defaults %+v", d)
	}
}

func TestResolveURLs(t *testing.T) {
	for _, tc := range []struct {
		cfg              Config
		polling, ws, nsp string
	}{
		{Config{URL: "http://h:8080"}, "http://h:8080/socket.io/?EIO=4&sid=S&transport=polling", "ws://h:8080/socket.io/?EIO=4&sid=S&transport=websocket", "/events"},
		{Config{URL: "wss://h/admin?tenant=a"}, "https://h/socket.io/?EIO=4&sid=S&tenant=a&transport=polling", "wss://h/socket.io/?EIO=4&sid=S&tenant=a&transport=websocket", "/admin"},
		{Config{URL: "https://h/", Namespace: "other", Path: "/rt"}, "https://h/rt/?EIO=4&sid=S&transport=polling", "wss://h/rt/?EIO=4&sid=S&transport=websocket", "/other"},
		{Config{URL: "http://h?EIO=3&transport=x"}, "http://h/socket.io/?EIO=4&sid=S&transport=polling", "ws://h/socket.io/?EIO=4&sid=S&transport=websocket", "/events"},
	} {
		tc.cfg.Token = "t"
		s, err := resolve(tc.cfg)
		if err != nil {
			t.Fatalf("%+v: %v", tc.cfg, err)
		}
		if got := s.engineURL("polling", "S"); got != tc.polling {
			t.Errorf("%s: polling URL %s, want %s", tc.cfg.URL, got, tc.polling)
		}
		if got := s.engineURL("websocket", "S"); got != tc.ws {
			t.Errorf("%s: websocket URL %s, want %s", tc.cfg.URL, got, tc.ws)
		}
		if s.namespace != tc.nsp {
			t.Errorf("%s: namespace %s, want %s", tc.cfg.URL, s.namespace, tc.nsp)
		}
	}
}
