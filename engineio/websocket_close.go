package engineio

import (
	"context"
	"net"
	"time"

	"github.com/gobwas/ws"
)

// closeFrameWait bounds how long a close waits for the write token so that
// its close frame goes out after the write in progress, and how long the
// close frame itself may take. A writer blocked on a client that does not
// read holds the token longer: the connection then closes without a close
// frame, which that client would not have read anyway.
const closeFrameWait = time.Second

// closeLinger is how long a connection stays half-closed after the close
// frame (see lingerClose) for the client to close its side.
const closeLinger = 2 * time.Second

// close ends the connection, once; with a non-zero code a close frame is
// sent first. The close frame must be the last frame on the wire: its
// writer retires the write token, so that nothing can follow it. close
// never waits on the client: when the token is busy, or the socket cannot
// take the whole close frame at once (a client that stopped reading left
// it full), the close frame and the end of the connection happen on a
// goroutine of their own. Its callers include Server.Shutdown, which closes
// every session in turn, and the flushers, which serve every session.
func (c *wsConn) close(code int) {
	c.closeOnce.Do(func() {
		if code == 0 {
			c.shutdown()
			return
		}
		frame := ws.MustCompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusCode(code), "")))
		if ok, _ := c.wtok.tryLock(); ok {
			if n := c.writeNonBlocking(frame); n < len(frame) {
				go c.finishClose(frame[n:])
				return
			}
			c.wtok.retire()
			c.lingerClose()
			return
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), closeFrameWait)
			err := c.wtok.lock(ctx)
			cancel()
			if err != nil {
				c.shutdown()
				return
			}
			c.finishClose(frame)
		}()
	})
}

// finishClose writes frame, the close frame or what is left of it, with
// blocking writes, retires the write token, which the caller holds, and
// ends the connection.
func (c *wsConn) finishClose(frame []byte) {
	_, _ = writeWithProgress(c.conn, net.Buffers{frame}, closeFrameWait)
	c.wtok.retire()
	c.lingerClose()
}

// lingerClose ends the connection after the close frame. Closing the
// socket at once would make the kernel answer a reset if bytes the client
// sent are still unread in its receive buffer (a client that was sending
// when the server decided to close), and a reset can destroy, on the
// client's side, what it had not read yet: the close frame and the frames
// before it (a DISCONNECT, the last events). So the write side is shut
// (the client reads everything, then end of stream), the reader goes on
// reading and dropping what comes, and the socket is closed when the
// client closes its side (readerDone) or after closeLinger.
func (c *wsConn) lingerClose() {
	if tc, ok := c.conn.(*net.TCPConn); ok && tc.CloseWrite() == nil {
		time.AfterFunc(closeLinger, c.shutdown)
		return
	}
	c.shutdown()
}

// shutdown closes the socket, once; any goroutine. A write in progress
// fails with net.ErrClosed.
func (c *wsConn) shutdown() {
	if c.shut.Swap(true) {
		return
	}
	if c.polled {
		c.srv.poller.forget(c) // before the descriptor can be reused
	}
	_ = c.conn.Close()
}
