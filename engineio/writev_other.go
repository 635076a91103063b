//go:build !linux

package engineio

// writevState is unused off Linux: every connection takes the blocking
// write path (see writer.go).
type writevState struct{}

func (v *writevState) init() {}

func (v *writevState) write(c *wsConn, frames [][]byte) (written, total int, err error) {
	for _, f := range frames {
		total += len(f)
	}
	return 0, total, nil
}

// writeNonBlocking writes nothing off Linux: the caller writes b with
// blocking writes elsewhere.
func (c *wsConn) writeNonBlocking(b []byte) int { return 0 }
