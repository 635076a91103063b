package redisadapter_test

import (
	"strings"
	"testing"

	"github.com/operate/realtime/socketio/redisadapter"
)

func TestConfigRedacted(t *testing.T) {
	s := redisadapter.Config{Addr: "h:1", Username: "u", Password: "secret", Mode: redisadapter.Sharded}.Redacted()
	if strings.Contains(s, "secret") || !strings.Contains(s, "password=set") || !strings.Contains(s, "mode=sharded") {
		t.Errorf("Redacted() = %s", s)
	}
	s = redisadapter.Config{Addr: "h:1", Mode: redisadapter.Streams}.Redacted()
	if !strings.Contains(s, "mode=streams stream=socket.io streams=1 maxlen=10000 sessions=sio:session:") {
		t.Errorf("Redacted() = %s", s)
	}
	if _, err := redisadapter.New(redisadapter.Config{}); err == nil {
		t.Error("New accepted an empty Addr")
	}
}
