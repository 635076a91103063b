package corebench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/internal/wsclient"
	"github.com/operate/realtime/internal/wsframe"
)

// connectSecret signs the tokens of BenchmarkConnect's clients.
const connectSecret = "corebench-connect-secret-0123456789abcdef"

// connectOrgs is how many organizations BenchmarkConnect's users spread over.
const connectOrgs = 10

// runConnectChild is the load generator of BenchmarkConnect:
// "connect <addr> <n> <inflight>". On each "round <r>" command it mints n
// tokens (users of round r, so that every round's users are new to the
// server), then performs n full gateway handshakes with at most inflight
// under way at once: WebSocket upgrade, Engine.IO open, CONNECT to the
// gateway's namespace with auth.token, and the CONNECT reply and the
// "connected" event awaited. It answers "done <ok> <handshake ns>", keeping
// the connections open; "close" closes them and answers "closed".
func runConnectChild(f []string) error {
	if len(f) != 4 {
		return fmt.Errorf("bad connect spec %q", f)
	}
	addr := f[1]
	n, err := strconv.Atoi(f[2])
	if err != nil {
		return err
	}
	inflight, err := strconv.Atoi(f[3])
	if err != nil {
		return err
	}
	var open []*wsframe.Conn
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd := strings.Fields(in.Text())
		switch {
		case len(cmd) == 2 && cmd[0] == "round":
			auths := make([][]byte, n)
			for i := range n {
				tok, err := auth.Mint(connectSecret, auth.MintClaims{
					UserID:         fmt.Sprintf("user-%s-%d", cmd[1], i),
					OrganizationID: "org-" + strconv.Itoa(i%connectOrgs),
					Role:           "member",
				}, time.Hour, time.Time{})
				if err != nil {
					return err
				}
				auths[i] = []byte(`{"token":"` + tok + `"}`)
			}
			conns, took, err := handshakes(addr, auths, inflight)
			open = append(open, conns...)
			if err != nil {
				fmt.Fprintln(os.Stderr, "child:", err)
			}
			fmt.Printf("done %d %d\n", len(conns), took.Nanoseconds())
		case len(cmd) == 1 && cmd[0] == "close":
			for _, c := range open {
				c.Close()
			}
			open = nil
			fmt.Println("closed")
		}
	}
	return nil
}

// handshakes opens one connection per auth payload, inflight at a time. It
// returns the connections that succeeded and the first error.
func handshakes(addr string, auths [][]byte, inflight int) ([]*wsframe.Conn, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conns := make([]*wsframe.Conn, len(auths))
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range min(inflight, len(auths)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(auths) {
					return
				}
				c, err := wsclient.DialWith(ctx, addr, wsclient.Options{
					Namespace: "/events", Auth: auths[i], WaitEvent: "connected",
				})
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	ok := conns[:0]
	for _, c := range conns {
		if c != nil {
			ok = append(ok, c)
		}
	}
	err, _ := firstErr.Load().(error)
	return ok, took, err
}
