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

	"github.com/operate/realtime/internal/wsclient"
	"github.com/operate/realtime/internal/wsframe"
)

// childEnv selects child mode: the process opens connections to the parent's
// server and reports what it receives.
const childEnv = "COREBENCH_CHILD"

// runChild is the load generator: "sio <addr> <n>" opens n Socket.IO
// clients over WebSocket; "raw <addr> <n>" opens n plain TCP connections.
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
			if mode == "raw" {
				conns[i], err = net.Dial("tcp", addr)
			} else {
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
