// Package corebench measures the hot paths of the Socket.IO core on this
// machine: memory per idle WebSocket connection, server CPU per delivered
// broadcast message (single broadcasts and bursts) against the cost of one
// write system call per delivery, and allocations per recipient.
//
// The clients run in a child process (the test binary re-executed), so the
// figures are the server's alone. Run with `make bench` or
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/corebench
package corebench

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
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
	if len(f) != 3 {
		return fmt.Errorf("bad child spec %q", spec)
	}
	mode, addr := f[0], f[1]
	n, err := strconv.Atoi(f[2])
	if err != nil {
		return err
	}
	var received atomic.Int64
	conns := make([]net.Conn, n)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialClient(mode, addr)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	for _, c := range conns {
		if mode == "raw" {
			go countBytes(c, &received)
		} else {
			go countEvents(c, &received)
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

func dialClient(mode, addr string) (net.Conn, error) {
	if mode == "raw" {
		return net.Dial("tcp", addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, br, _, err := ws.Dial(ctx, "ws://"+addr+"/socket.io/?EIO=4&transport=websocket")
	if err != nil {
		return nil, err
	}
	var r io.Reader = c
	if br != nil {
		r = io.MultiReader(br, c)
	}
	if _, err := readFrame(r); err != nil { // Engine.IO open
		return nil, err
	}
	if err := ws.WriteFrame(c, ws.MaskFrame(ws.NewTextFrame([]byte("40")))); err != nil {
		return nil, err
	}
	p, err := readFrame(r) // CONNECT reply
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(string(p), "40{") {
		return nil, fmt.Errorf("unexpected CONNECT reply %q", p)
	}
	if br != nil && br.Buffered() > 0 {
		return nil, fmt.Errorf("unexpected data after CONNECT")
	}
	return c, nil
}

// readFrame reads one unmasked server frame and returns its payload.
func readFrame(r io.Reader) ([]byte, error) {
	var h [10]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, h[2:4]); err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		if _, err := io.ReadFull(r, h[2:10]); err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint64(h[2:10]))
	}
	p := make([]byte, n)
	_, err := io.ReadFull(r, p)
	return p, err
}

// countEvents counts Socket.IO EVENT packets ("42...") on a connection.
func countEvents(c net.Conn, received *atomic.Int64) {
	r := bufio.NewReaderSize(c, 32<<10)
	for {
		p, err := readFrame(r)
		if err != nil {
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
