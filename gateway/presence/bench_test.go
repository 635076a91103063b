package presence

import (
	"strconv"
	"testing"

	"github.com/operate/realtime/gateway"
)

// BenchmarkConnectDisconnect is what presence adds to a connection and its
// disconnection, on the socket's goroutine (the Redis writes run on the
// tracker's own).
func BenchmarkConnectDisconnect(b *testing.B) {
	tr, err := New(Config{Grace: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	conns := make([]gateway.Connection, 1024)
	for i := range conns {
		conns[i] = gateway.Connection{OrganizationID: "org-" + strconv.Itoa(i%16), UserID: "user-" + strconv.Itoa(i)}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c := conns[i%len(conns)]
			tr.Connected(c)
			tr.Disconnected(c, "transport close")
			i++
		}
	})
}
