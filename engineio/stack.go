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
func growStack() { reserveStack(false) }

// reserveStack's frame is handlerStack less what the guard and the callers
// leave: calling it is what grows the stack, in its prologue. The array is
// only declared in a branch never taken (the compiler cannot know that
// across the noinline call), so that its 14 KiB are never zeroed.
//
//go:noinline
func reserveStack(use bool) {
	if use {
		var frame [handlerStack - 2<<10]byte
		touchStack(frame[:])
	}
}

// touchStack keeps reserveStack's frame from being optimized away.
//
//go:noinline
func touchStack(b []byte) { b[0] = 0 }
