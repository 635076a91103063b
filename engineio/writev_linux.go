//go:build linux

package engineio

import (
	"syscall"
	"unsafe"
)

// maxIovecs stays under the kernel's IOV_MAX (1024).
const maxIovecs = 1024

// writevState performs non-blocking vectored writes through a connection's
// raw file descriptor. Its callback is bound once so that a write does not
// allocate.
type writevState struct {
	iov  []syscall.Iovec
	n    int
	errn syscall.Errno
	fn   func(fd uintptr) bool
}

func (v *writevState) init() {
	v.iov = make([]syscall.Iovec, 0, 64)
	v.fn = v.writev
}

func (v *writevState) writev(fd uintptr) bool {
	r, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&v.iov[0])), uintptr(len(v.iov)))
	v.n, v.errn = int(r), e
	return true // never wait: a full socket buffer is handled by the caller
}

// write writes as much of frames as the socket accepts now. It returns the
// bytes written and the total; EAGAIN is not an error.
func (v *writevState) write(c *wsConn, frames [][]byte) (written, total int, err error) {
	for _, f := range frames {
		total += len(f)
	}
	for written < total {
		// Build iovecs for what is left, up to maxIovecs at a time.
		v.iov = v.iov[:0]
		skip := written
		for _, f := range frames {
			if skip >= len(f) {
				skip -= len(f)
				continue
			}
			b := f[skip:]
			skip = 0
			v.iov = append(v.iov, syscall.Iovec{Base: &b[0]})
			v.iov[len(v.iov)-1].SetLen(len(b))
			if len(v.iov) == maxIovecs {
				break
			}
		}
		if err := c.raw.Write(v.fn); err != nil {
			return written, total, err
		}
		clear(v.iov)
		switch {
		case v.errn == syscall.EAGAIN:
			return written, total, nil
		case v.errn == syscall.EINTR:
			continue
		case v.errn != 0:
			return written, total, v.errn
		}
		written += v.n
	}
	return written, total, nil
}

// writeNonBlocking writes what of b the socket takes now, without waiting,
// and returns how many bytes that was. The caller holds c's write token.
func (c *wsConn) writeNonBlocking(b []byte) int {
	if c.raw == nil {
		return 0
	}
	n := 0
	_ = c.raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := syscall.Write(int(fd), b[n:])
			if m > 0 {
				n += m
			}
			if err != syscall.EINTR && (err != nil || m <= 0) {
				break
			}
		}
		return true // never wait: the caller writes the rest elsewhere
	})
	return n
}
