// Package corebench measures the hot paths of the Socket.IO core on this
// machine: memory per idle WebSocket connection, server CPU per delivered
// broadcast message (single broadcasts and bursts) against the cost of one
// write system call per delivery, allocations per recipient, and the
// server CPU and allocations of a gateway JWT handshake (BenchmarkConnect).
//
// The clients run in a child process (the test binary re-executed), so the
// figures are the server's alone. Run with `make bench` or
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/corebench
package corebench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/gateway/auth"
	"github.com/operate/realtime/internal/wsclient"
	"github.com/operate/realtime/internal/wsframe"
)

// childEnv selects child mode: the process opens connections to the parent's
// server and reports what it receives.
const childEnv = "COREBENCH_CHILD"

// runChild is the load generator: "sio <addr> <n>" opens n Socket.IO
// clients over WebSocket; "gw <addr> <n>" opens n clients of the events
// gateway (each its own user, with a token); "raw <addr> <n>" opens n
// plain TCP connections.
// It then reads commands on stdin: "expect <total>" answers "done" once
// total messages (Socket.IO events, or bytes in raw mode) have arrived.
func runChild(spec string) error {
	f := strings.Fields(spec)
	if len(f) > 0 && f[0] == "connect" {
		return runConnectChild(f)
	}
	if len(f) != 3 {
		return fmt.Errorf("bad child spec %q", spec)
	}
	mode, addr := f[0], f[1]
	n, err := strconv.Atoi(f[2])
	if err != nil {
		return err
	}
	var received atomic.Int64
	conns := make([]net.Conn, n)        // raw mode
	wsConns := make([]*wsframe.Conn, n) // sio mode
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var err error
			switch mode {
			case "raw":
				conns[i], err = net.Dial("tcp", addr)
			case "gw":
				wsConns[i], err = dialGateway(addr, i)
			default:
				wsConns[i], err = dialSocketIO(addr)
			}
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	for i := range n {
		if mode == "raw" {
			go countBytes(conns[i], &received)
		} else {
			go countEvents(wsConns[i], &received)
		}
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var total int64
		if _, err := fmt.Sscanf(in.Text(), "expect %d", &total); err != nil {
			continue
		}
		deadline := time.Now().Add(2 * time.Minute)
		for received.Load() < total && time.Now().Before(deadline) {
			time.Sleep(200 * time.Microsecond)
		}
		fmt.Printf("done %d\n", received.Load())
	}
	return nil
}

// dialGateway connects client i to the gateway's namespace as user usr_<i>
// of one of connectOrgs organizations, with a 24-hour token.
func dialGateway(addr string, i int) (*wsframe.Conn, error) {
	tok, err := auth.Mint(connectSecret, auth.MintClaims{
		UserID:         "usr_" + strconv.Itoa(i),
		OrganizationID: "org_" + strconv.Itoa(i%connectOrgs),
		Role:           "member",
	}, 24*time.Hour, time.Time{})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := (&wsframe.Dialer{ReadBufferSize: 4 << 10}).Dial(ctx, "ws://"+addr+"/socket.io/?EIO=4&transport=websocket")
	if err != nil {
		return nil, err
	}
	p, _, err := c.ReadMessage(nil)
	if err != nil || len(p) == 0 || p[0] != '0' {
		c.Close()
		return nil, fmt.Errorf("open packet %q: %v", p, err)
	}
	if err := c.WriteText([]byte(`40` + gateway.DefaultNamespace + `,{"token":"` + tok + `"}`)); err != nil {
		c.Close()
		return nil, err
	}
	for {
		if p, _, err = c.ReadMessage(p[:0]); err != nil {
			c.Close()
			return nil, fmt.Errorf("CONNECT reply: %w", err)
		}
		switch s := string(p); {
		case strings.HasPrefix(s, "40"+gateway.DefaultNamespace+",{"):
			return c, nil
		case strings.HasPrefix(s, "44"):
			c.Close()
			return nil, fmt.Errorf("CONNECT refused: %s", s)
		}
	}
}

func dialSocketIO(addr string) (*wsframe.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return wsclient.Dial(ctx, addr, "")
}

// countEvents counts Socket.IO EVENT packets ("42...") on a connection.
func countEvents(c *wsframe.Conn, received *atomic.Int64) {
	var p []byte
	for {
		var err error
		if p, _, err = c.ReadMessage(p[:0]); err != nil {
			return
		}
		if len(p) >= 2 && p[0] == '4' && p[1] == '2' {
			received.Add(1)
		}
	}
}

func countBytes(c net.Conn, received *atomic.Int64) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		received.Add(int64(n))
		if err != nil {
			return
		}
	}
}
