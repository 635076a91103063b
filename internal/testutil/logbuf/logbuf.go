// Package logbuf is the buffer tests give a logger to read its lines back:
// a bytes.Buffer that is safe for the logger's concurrent writes.
package logbuf

import (
	"bytes"
	"sync"
)

// Buffer collects what a logger writes; the zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
