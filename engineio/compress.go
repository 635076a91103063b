package engineio

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"sync"

	"github.com/gobwas/ws/wsflate"
)

// permessage-deflate (RFC 7692) is negotiated without context takeover in
// both directions. That choice is what makes compression compatible with
// encode-once broadcasting: a compressed frame depends only on the message,
// so it is built once per Packet and shared, and no session keeps a 32 KiB
// compression window.

var deflateParams = wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}

func deflateExtension() *wsflate.Extension { return &wsflate.Extension{Parameters: deflateParams} }

func deflateAccepted(ext *wsflate.Extension) bool {
	if ext == nil {
		return false
	}
	_, ok := ext.Accepted()
	return ok
}

var flateWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.DefaultCompression)
	return w
}}

var flateReaders = sync.Pool{New: func() any { return flate.NewReader(nil) }}

// deflateTail is what a sync flush ends with; RFC 7692 section 7.2.1 drops it.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// frameFor returns the bytes to write for p on a connection with or without
// compression.
func (p *Packet) frameFor(deflate bool, threshold int) []byte {
	if !deflate || p.noCompress || len(p.frame)-p.off < threshold || p.frame[0]&0x0f > opBinary {
		return p.frame
	}
	p.deflateOnce.Do(func() { p.deflated = deflateFrame(p) })
	return p.deflated
}

func deflateFrame(p *Packet) []byte {
	var buf bytes.Buffer
	buf.Grow(maxFrameHeader + (len(p.frame)-p.off)/2)
	buf.Write(make([]byte, maxFrameHeader))
	w := flateWriters.Get().(*flate.Writer)
	w.Reset(&buf)
	_, _ = w.Write(p.frame[p.off:])
	_ = w.Flush()
	flateWriters.Put(w)
	b := bytes.TrimSuffix(buf.Bytes(), deflateTail)
	n := len(b) - maxFrameHeader
	h := headerSize(n)
	off := maxFrameHeader - h
	putHeader(b[off:maxFrameHeader], p.frame[0]&0x0f, n)
	b[off] |= 0x40 // RSV1: compressed
	return b[off:]
}

var errInflateTooBig = errors.New("decompressed message too big")

// inflate decompresses a message, refusing output beyond limit bytes
// (a decompression bomb is just a big message).
func inflate(data []byte, limit int) ([]byte, error) {
	src := io.MultiReader(bytes.NewReader(data), bytes.NewReader(deflateTail), bytes.NewReader([]byte{0x01, 0x00, 0x00, 0xff, 0xff}))
	r := flateReaders.Get().(io.ReadCloser)
	defer flateReaders.Put(r)
	if err := r.(flate.Resetter).Reset(src, nil); err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	if len(out) > limit {
		return nil, errInflateTooBig
	}
	return out, nil
}
