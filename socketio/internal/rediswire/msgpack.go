// Package rediswire holds the wire formats of Node's @socket.io/redis-adapter
// 8.x (classic and sharded), @socket.io/redis-emitter 5.x and
// @socket.io/redis-streams-adapter 0.3 (streams.go): channel names,
// the msgpack and JSON messages, and a transcoder between our JSON packets
// (binary as {"_placeholder":true,"num":N} plus attachments) and msgpack
// (binary as bin), so that event arguments stay raw JSON on our side and
// binary stays binary on the wire.
//
// The msgpack writer produces what notepack.io 3.0.1 produces for the same
// JavaScript value (smallest integer, string, array and map forms; float64
// for non-integers), so our messages are byte-identical to Node's. The
// reader accepts every msgpack form.
//
// See docs/redis.md and the protocol notes (§5) for the formats.
package rediswire

import (
	"encoding/binary"
	"errors"
	"math"
)

// Msgpack type bytes used below.
const (
	mpNil      = 0xc0
	mpFalse    = 0xc2
	mpTrue     = 0xc3
	mpBin8     = 0xc4
	mpBin16    = 0xc5
	mpBin32    = 0xc6
	mpExt8     = 0xc7
	mpExt16    = 0xc8
	mpExt32    = 0xc9
	mpFloat32  = 0xca
	mpFloat64  = 0xcb
	mpUint8    = 0xcc
	mpUint16   = 0xcd
	mpUint32   = 0xce
	mpUint64   = 0xcf
	mpInt8     = 0xd0
	mpInt16    = 0xd1
	mpInt32    = 0xd2
	mpInt64    = 0xd3
	mpFixExt1  = 0xd4
	mpFixExt2  = 0xd5
	mpFixExt4  = 0xd6
	mpFixExt8  = 0xd7
	mpFixExt16 = 0xd8
	mpStr8     = 0xd9
	mpStr16    = 0xda
	mpStr32    = 0xdb
	mpArray16  = 0xdc
	mpArray32  = 0xdd
	mpMap16    = 0xde
	mpMap32    = 0xdf
)

// maxDepth bounds the nesting of decoded and transcoded values, so that a
// hostile message cannot exhaust the stack.
const maxDepth = 256

// Errors of the decoders.
var (
	ErrTruncated = errors.New("rediswire: truncated message")
	ErrTooDeep   = errors.New("rediswire: value nested too deeply")
	ErrMalformed = errors.New("rediswire: malformed message")
)

// AppendNil appends msgpack nil.
func AppendNil(b []byte) []byte { return append(b, mpNil) }

// AppendBool appends a msgpack boolean.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, mpTrue)
	}
	return append(b, mpFalse)
}

// AppendInt appends v in the smallest form, as notepack.io does.
func AppendInt(b []byte, v int64) []byte {
	if v >= 0 {
		return AppendUint(b, uint64(v))
	}
	switch {
	case v >= -0x20:
		return append(b, byte(v))
	case v >= -0x80:
		return append(b, mpInt8, byte(v))
	case v >= -0x8000:
		return append(b, mpInt16, byte(v>>8), byte(v))
	case v >= -0x80000000:
		return binary.BigEndian.AppendUint32(append(b, mpInt32), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, mpInt64), uint64(v))
	}
}

// AppendUint appends v in the smallest unsigned form.
func AppendUint(b []byte, v uint64) []byte {
	switch {
	case v < 0x80:
		return append(b, byte(v))
	case v < 0x100:
		return append(b, mpUint8, byte(v))
	case v < 0x10000:
		return append(b, mpUint16, byte(v>>8), byte(v))
	case v < 0x100000000:
		return binary.BigEndian.AppendUint32(append(b, mpUint32), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, mpUint64), v)
	}
}

// AppendFloat64 appends a float64 (0xcb), notepack's form for non-integers.
func AppendFloat64(b []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, mpFloat64), math.Float64bits(f))
}

// AppendString appends a msgpack str.
func AppendString(b []byte, s string) []byte {
	b = appendStrHeader(b, len(s))
	return append(b, s...)
}

// AppendStringBytes appends s as a msgpack str.
func AppendStringBytes(b []byte, s []byte) []byte {
	b = appendStrHeader(b, len(s))
	return append(b, s...)
}

func appendStrHeader(b []byte, n int) []byte {
	switch {
	case n < 0x20:
		return append(b, 0xa0|byte(n))
	case n < 0x100:
		return append(b, mpStr8, byte(n))
	case n < 0x10000:
		return append(b, mpStr16, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, mpStr32), uint32(n))
	}
}

// AppendBinary appends a msgpack bin: how Node's Buffers travel.
func AppendBinary(b []byte, v []byte) []byte {
	n := len(v)
	switch {
	case n < 0x100:
		b = append(b, mpBin8, byte(n))
	case n < 0x10000:
		b = append(b, mpBin16, byte(n>>8), byte(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpBin32), uint32(n))
	}
	return append(b, v...)
}

// AppendArrayHeader appends the header of an array of n elements.
func AppendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 0x10:
		return append(b, 0x90|byte(n))
	case n < 0x10000:
		return append(b, mpArray16, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, mpArray32), uint32(n))
	}
}

// AppendMapHeader appends the header of a map of n entries.
func AppendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 0x10:
		return append(b, 0x80|byte(n))
	case n < 0x10000:
		return append(b, mpMap16, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, mpMap32), uint32(n))
	}
}

// AppendStringArray appends an array of strings.
func AppendStringArray(b []byte, ss []string) []byte {
	b = AppendArrayHeader(b, len(ss))
	for _, s := range ss {
		b = AppendString(b, s)
	}
	return b
}

// Reader decodes msgpack from a byte slice. Its methods return ErrTruncated
// or ErrMalformed on bad input; they never panic.
type Reader struct {
	b []byte
	i int
}

// NewReader returns a reader of b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Len returns the number of unread bytes.
func (r *Reader) Len() int { return len(r.b) - r.i }

func (r *Reader) peek() (byte, error) {
	if r.i >= len(r.b) {
		return 0, ErrTruncated
	}
	return r.b[r.i], nil
}

func (r *Reader) take(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.i {
		return nil, ErrTruncated
	}
	s := r.b[r.i : r.i+n : r.i+n]
	r.i += n
	return s, nil
}

func (r *Reader) u8() (byte, error) {
	if r.i >= len(r.b) {
		return 0, ErrTruncated
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}

func (r *Reader) u16() (int, error) {
	s, err := r.take(2)
	if err != nil {
		return 0, err
	}
	return int(binary.BigEndian.Uint16(s)), nil
}

func (r *Reader) u32() (int, error) {
	s, err := r.take(4)
	if err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint32(s)
	if uint64(v) > uint64(len(r.b)) { // a length longer than the message cannot be valid
		return 0, ErrTruncated
	}
	return int(v), nil
}

// IsNil reports whether the next value is nil (without consuming it).
func (r *Reader) IsNil() bool { c, err := r.peek(); return err == nil && c == mpNil }

// ArrayLen reads an array header.
func (r *Reader) ArrayLen() (int, error) {
	c, err := r.u8()
	if err != nil {
		return 0, err
	}
	switch {
	case c&0xf0 == 0x90:
		return int(c & 0x0f), nil
	case c == mpArray16:
		return r.u16()
	case c == mpArray32:
		return r.u32()
	}
	r.i--
	return 0, ErrMalformed
}

// MapLen reads a map header.
func (r *Reader) MapLen() (int, error) {
	c, err := r.u8()
	if err != nil {
		return 0, err
	}
	switch {
	case c&0xf0 == 0x80:
		return int(c & 0x0f), nil
	case c == mpMap16:
		return r.u16()
	case c == mpMap32:
		return r.u32()
	}
	r.i--
	return 0, ErrMalformed
}

// StringBytes reads a str (or bin) and returns its bytes, aliasing the
// input.
func (r *Reader) StringBytes() ([]byte, error) {
	c, err := r.u8()
	if err != nil {
		return nil, err
	}
	var n int
	switch {
	case c&0xe0 == 0xa0:
		n = int(c & 0x1f)
	case c == mpStr8 || c == mpBin8:
		var l byte
		l, err = r.u8()
		n = int(l)
	case c == mpStr16 || c == mpBin16:
		n, err = r.u16()
	case c == mpStr32 || c == mpBin32:
		n, err = r.u32()
	default:
		r.i--
		return nil, ErrMalformed
	}
	if err != nil {
		return nil, err
	}
	return r.take(n)
}

// String reads a str.
func (r *Reader) String() (string, error) {
	b, err := r.StringBytes()
	return string(b), err
}

// Bool reads a boolean; other values are consumed and count as false,
// except nil-free "truthy" numbers and strings are not interpreted.
func (r *Reader) Bool() (bool, error) {
	c, err := r.peek()
	if err != nil {
		return false, err
	}
	switch c {
	case mpTrue:
		r.i++
		return true, nil
	case mpFalse:
		r.i++
		return false, nil
	}
	return false, r.Skip()
}

// Number reads any integer or float and returns it as a float64, and as an
// int64 when it is integral.
func (r *Reader) Number() (f float64, i int64, integral bool, err error) {
	c, err := r.u8()
	if err != nil {
		return 0, 0, false, err
	}
	switch {
	case c < 0x80:
		return float64(c), int64(c), true, nil
	case c >= 0xe0:
		v := int64(int8(c))
		return float64(v), v, true, nil
	}
	var s []byte
	switch c {
	case mpUint8, mpInt8:
		s, err = r.take(1)
	case mpUint16, mpInt16:
		s, err = r.take(2)
	case mpUint32, mpInt32, mpFloat32:
		s, err = r.take(4)
	case mpUint64, mpInt64, mpFloat64:
		s, err = r.take(8)
	default:
		r.i--
		return 0, 0, false, ErrMalformed
	}
	if err != nil {
		return 0, 0, false, err
	}
	switch c {
	case mpUint8:
		return float64(s[0]), int64(s[0]), true, nil
	case mpInt8:
		v := int64(int8(s[0]))
		return float64(v), v, true, nil
	case mpUint16:
		v := int64(binary.BigEndian.Uint16(s))
		return float64(v), v, true, nil
	case mpInt16:
		v := int64(int16(binary.BigEndian.Uint16(s)))
		return float64(v), v, true, nil
	case mpUint32:
		v := int64(binary.BigEndian.Uint32(s))
		return float64(v), v, true, nil
	case mpInt32:
		v := int64(int32(binary.BigEndian.Uint32(s)))
		return float64(v), v, true, nil
	case mpUint64:
		u := binary.BigEndian.Uint64(s)
		return float64(u), int64(u), u <= math.MaxInt64, nil
	case mpInt64:
		v := int64(binary.BigEndian.Uint64(s))
		return float64(v), v, true, nil
	case mpFloat32:
		f = float64(math.Float32frombits(binary.BigEndian.Uint32(s)))
	default:
		f = math.Float64frombits(binary.BigEndian.Uint64(s))
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		return f, int64(f), true, nil
	}
	return f, 0, false, nil
}

// Int reads an integral number.
func (r *Reader) Int() (int64, error) {
	_, i, ok, err := r.Number()
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, ErrMalformed
	}
	return i, nil
}

// Skip consumes one value of any type.
func (r *Reader) Skip() error { return r.skip(0) }

func (r *Reader) skip(depth int) error {
	if depth > maxDepth {
		return ErrTooDeep
	}
	c, err := r.u8()
	if err != nil {
		return err
	}
	var n int
	switch {
	case c < 0x80 || c >= 0xe0 || c == mpNil || c == mpFalse || c == mpTrue:
		return nil
	case c&0xf0 == 0x80:
		return r.skipN(2*int(c&0x0f), depth)
	case c&0xf0 == 0x90:
		return r.skipN(int(c&0x0f), depth)
	case c&0xe0 == 0xa0:
		_, err = r.take(int(c & 0x1f))
		return err
	}
	switch c {
	case mpBin8, mpStr8:
		var l byte
		if l, err = r.u8(); err == nil {
			_, err = r.take(int(l))
		}
	case mpBin16, mpStr16:
		if n, err = r.u16(); err == nil {
			_, err = r.take(n)
		}
	case mpBin32, mpStr32:
		if n, err = r.u32(); err == nil {
			_, err = r.take(n)
		}
	case mpExt8:
		var l byte
		if l, err = r.u8(); err == nil {
			_, err = r.take(int(l) + 1)
		}
	case mpExt16:
		if n, err = r.u16(); err == nil {
			_, err = r.take(n + 1)
		}
	case mpExt32:
		if n, err = r.u32(); err == nil {
			_, err = r.take(n + 1)
		}
	case mpFloat32, mpUint32, mpInt32:
		_, err = r.take(4)
	case mpFloat64, mpUint64, mpInt64:
		_, err = r.take(8)
	case mpUint8, mpInt8:
		_, err = r.take(1)
	case mpUint16, mpInt16:
		_, err = r.take(2)
	case mpFixExt1:
		_, err = r.take(2)
	case mpFixExt2:
		_, err = r.take(3)
	case mpFixExt4:
		_, err = r.take(5)
	case mpFixExt8:
		_, err = r.take(9)
	case mpFixExt16:
		_, err = r.take(17)
	case mpArray16:
		if n, err = r.u16(); err == nil {
			err = r.skipN(n, depth)
		}
	case mpArray32:
		if n, err = r.u32(); err == nil {
			err = r.skipN(n, depth)
		}
	case mpMap16:
		if n, err = r.u16(); err == nil {
			err = r.skipN(2*n, depth)
		}
	case mpMap32:
		if n, err = r.u32(); err == nil {
			err = r.skipN(2*n, depth)
		}
	default:
		err = ErrMalformed // 0xc1 is never used
	}
	return err
}

func (r *Reader) skipN(n, depth int) error {
	for range n {
		if err := r.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// Strings reads an array of strings (numbers are converted to their
// decimal form, as Node's rooms may be numbers); nil reads as no strings.
func (r *Reader) Strings() ([]string, error) {
	if r.IsNil() {
		r.i++
		return nil, nil
	}
	n, err := r.ArrayLen()
	if err != nil {
		return nil, err
	}
	if n > r.Len() {
		return nil, ErrTruncated
	}
	out := make([]string, 0, n)
	for range n {
		c, err := r.peek()
		if err != nil {
			return nil, err
		}
		if c&0xe0 == 0xa0 || c == mpStr8 || c == mpStr16 || c == mpStr32 {
			s, err := r.String()
			if err != nil {
				return nil, err
			}
			out = append(out, s)
			continue
		}
		v, err := r.appendJSON(nil, BinaryAsBuffer, nil, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, string(v))
	}
	return out, nil
}
