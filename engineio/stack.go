package engineio

// Handling a message can go deep: a Socket.IO CONNECT runs the
// middlewares (a token verification), the connection handlers, JSON
// encoding and a log line. The goroutines that do it start small (the
// poller's short-lived readers, net/http's connection goroutines), and a
// stack that grows from inside such a call chain is copied frame by
// frame, once per doubling: in a connection storm that was ~7% of the
// server's CPU. Growing it once, at the top, where the stack holds one
// or two frames, costs one cheap copy instead.

// handlerStack is the stack a handling goroutine is grown to up front.
const handlerStack = 16 << 10

// growStack makes the calling goroutine's stack about handlerStack deep.
//
//go:noinline
func growStack() {
	var frame [handlerStack - 2<<10]byte // what the guard and callers leave
	touchStack(frame[:])
}

// touchStack keeps growStack's frame from being optimized away.
//
//go:noinline
func touchStack(b []byte) { b[0] = 0 }
