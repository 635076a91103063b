package events

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// crockford is Crockford's base32 alphabet, in ASCII order so that ids sort like their bits.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewEventID returns a 26-character id in the ULID layout: 48 bits of Unix milliseconds of t
// then 80 random bits, in Crockford base32. Ids sort by time to the millisecond (not within
// one), and 80 random bits make collisions negligible.
func NewEventID(t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	rand.Read(b[6:]) // never fails (crypto/rand.Read crashes the program instead)
	return encodeULID(binary.BigEndian.Uint64(b[0:8]), binary.BigEndian.Uint64(b[8:16]))
}

// encodeULID writes the 128-bit value hi:lo as 26 base32 digits, most significant first (the
// first digit holds only 3 bits).
func encodeULID(hi, lo uint64) string {
	var out [26]byte
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
