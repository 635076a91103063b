package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/operate/realtime/gateway"
	"github.com/operate/realtime/socketio/redisadapter"
)

// scanCount is the COUNT hint of each SCAN, and the keys read per MGET.
const scanCount = 500

// RedisStore keeps revocations in Redis (a gateway.RevocationStore). It
// connects on first use and again after a failure: Redis need not be up
// when the server starts. Close releases its connection.
type RedisStore struct {
	// Static after construction.
	option rueidis.ClientOption
	prefix string

	mu     sync.Mutex
	client rueidis.Client
	closed bool
}

var _ gateway.RevocationStore = (*RedisStore)(nil)

// NewRedisStore returns a store on the Redis of cfg (the cluster's
// configuration: address, credentials, TLS), under cfg.KeyPrefix
// ("socket.io" by default) + ":revoked:".
func NewRedisStore(cfg redisadapter.Config) *RedisStore {
	prefix := cfg.KeyPrefix
	if prefix == "" {
		prefix = "socket.io"
	}
	o := cfg.ClientOption()
	o.DisableCache = true
	return &RedisStore{option: o, prefix: prefix + ":revoked:"}
}

// Prefix returns the prefix of the store's keys.
func (s *RedisStore) Prefix() string { return s.prefix }

func (s *RedisStore) redis() (rueidis.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("control: revocation store closed")
	}
	if s.client == nil {
		c, err := rueidis.NewClient(s.option)
		if err != nil {
			return nil, fmt.Errorf("control: connecting to Redis: %w", err)
		}
		s.client = c
	}
	return s.client, nil
}

// key names a revocation: its kind and what it names, hashed (ids may hold
// any character, and a key's length stays bounded).
func (s *RedisStore) key(r gateway.Revocation) string {
	h := sha256.New()
	if r.TokenID != "" {
		h.Write([]byte("jti\x00" + r.TokenID))
	} else {
		// One key per user, organization and time: the latest time wins
		// when they are read back (gateway's set keeps the latest).
		h.Write([]byte("user\x00" + r.OrganizationID + "\x00" + r.UserID + "\x00" + r.IssuedBefore.UTC().Format(time.RFC3339Nano)))
	}
	return s.prefix + hex.EncodeToString(h.Sum(nil)[:16])
}

// SaveRevocation stores r until r.Until.
func (s *RedisStore) SaveRevocation(ctx context.Context, r gateway.Revocation) error {
	ttl := time.Until(r.Until)
	if ttl <= 0 {
		return nil
	}
	val, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("control: encoding the revocation: %w", err)
	}
	c, err := s.redis()
	if err != nil {
		return err
	}
	cmd := c.B().Set().Key(s.key(r)).Value(rueidis.BinaryString(val)).PxMilliseconds(max(ttl.Milliseconds(), 1)).Build()
	if err := c.Do(ctx, cmd).Error(); err != nil {
		return fmt.Errorf("control: saving a revocation in Redis: %w", err)
	}
	return nil
}

// LoadRevocations reads every revocation kept.
func (s *RedisStore) LoadRevocations(ctx context.Context) ([]gateway.Revocation, error) {
	c, err := s.redis()
	if err != nil {
		return nil, err
	}
	var (
		out    []gateway.Revocation
		cursor uint64
	)
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(s.prefix+"*").Count(scanCount).Build()).AsScanEntry()
		if err != nil {
			return nil, fmt.Errorf("control: reading revocations from Redis: %w", err)
		}
		if len(e.Elements) > 0 {
			vals, err := c.Do(ctx, c.B().Mget().Key(e.Elements...).Build()).ToArray()
			if err != nil {
				return nil, fmt.Errorf("control: reading revocations from Redis: %w", err)
			}
			for _, v := range vals {
				b, err := v.AsBytes()
				if err != nil { // expired since the SCAN
					continue
				}
				var r gateway.Revocation
				if json.Unmarshal(b, &r) == nil && (r.TokenID != "" || r.UserID != "") {
					out = append(out, r)
				}
			}
		}
		if e.Cursor == 0 {
			return out, nil
		}
		cursor = e.Cursor
	}
}

// Close closes the store's connection.
func (s *RedisStore) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.client != nil {
		s.client.Close()
		s.client = nil
	}
}
