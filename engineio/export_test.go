package engineio

// UseReaderGoroutines makes the server built from o read each WebSocket on
// a goroutine of its own, as it does where epoll is unavailable.
func UseReaderGoroutines(o *Options) { o.readerGoroutines = true }
