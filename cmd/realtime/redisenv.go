package main

// The Redis adapter's settings from the environment: the library takes a
// Config, the command reads the variables that fill it.

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/operate/realtime/socketio/redisadapter"
)

// Environment variables read by redisConfigFromEnv.
const (
	envRedisURL              = "REDIS_URL"      // redis://[user:pass@]host[:port][/db], rediss:// for TLS
	envRedisHost             = "REDIS_HOST"     // host name or address
	envRedisPort             = "REDIS_PORT"     // default 6379
	envRedisUsername         = "REDIS_USERNAME" // overrides the URL's
	envRedisPassword         = "REDIS_PASSWORD" // overrides the URL's
	envRedisDB               = "REDIS_DB"       // database number, default 0
	envRedisTLS              = "REDIS_TLS"      // true: connect over TLS
	envRedisTLSCAFile        = "REDIS_TLS_CA_FILE"
	envRedisTLSServerName    = "REDIS_TLS_SERVER_NAME"
	envRedisTLSInsecure      = "REDIS_TLS_INSECURE_SKIP_VERIFY"
	envRedisKeyPrefix        = "REDIS_KEY_PREFIX"         // default socket.io
	envRedisMode             = "REDIS_ADAPTER_MODE"       // classic (default), sharded or streams
	envRedisSubscriptionMode = "REDIS_SUBSCRIPTION_MODE"  // dynamic (default), static, dynamic-private
	envRedisRequestsTimeout  = "REDIS_REQUESTS_TIMEOUT"   // Go duration, default 5s
	envRedisEnabled          = "REDIS_ENABLED"            // false: ignore the other variables
	envRedisStreamName       = "REDIS_STREAM_NAME"        // streams: default socket.io
	envRedisStreamCount      = "REDIS_STREAM_COUNT"       // streams: default 1
	envRedisStreamMaxLen     = "REDIS_STREAM_MAXLEN"      // streams: default 10000
	envRedisStreamReadCount  = "REDIS_STREAM_READ_COUNT"  // streams: default 100
	envRedisSessionKeyPrefix = "REDIS_SESSION_KEY_PREFIX" // streams: default sio:session:
)

// redisConfigFromEnv builds the Redis adapter's Config from environment variables (getenv is
// os.Getenv or a test double). ok is false when Redis is not configured:
// neither REDIS_URL nor REDIS_HOST is set, or REDIS_ENABLED is false; the
// server then runs single-node with the in-memory adapter. An error means
// the variables are set but invalid.
//
// REDIS_URL, when set, gives the address, credentials, database and TLS
// (rediss://); REDIS_HOST and REDIS_PORT are then ignored, while
// REDIS_USERNAME, REDIS_PASSWORD, REDIS_DB and REDIS_TLS override it when
// set. The other variables are listed with the envRedis constants.
func redisConfigFromEnv(getenv func(string) string) (cfg redisadapter.Config, ok bool, err error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	if v := get(envRedisEnabled); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return redisadapter.Config{}, false, fmt.Errorf("redisadapter: %s=%q: not a boolean", envRedisEnabled, v)
		}
		if !on {
			return redisadapter.Config{}, false, nil
		}
	}
	rawURL, host := get(envRedisURL), get(envRedisHost)
	if rawURL == "" && host == "" {
		return redisadapter.Config{}, false, nil
	}
	useTLS := false
	if rawURL != "" {
		u, err := url.Parse(rawURL)
		if err != nil {
			return redisadapter.Config{}, false, fmt.Errorf("redisadapter: %s: %w", envRedisURL, err)
		}
		switch u.Scheme {
		case "redis":
		case "rediss":
			useTLS = true
		default:
			return redisadapter.Config{}, false, fmt.Errorf("redisadapter: %s: scheme %q, want redis or rediss", envRedisURL, u.Scheme)
		}
		if u.Hostname() == "" {
			return redisadapter.Config{}, false, fmt.Errorf("redisadapter: %s has no host", envRedisURL)
		}
		port := u.Port()
		if port == "" {
			port = "6379"
		}
		cfg.Addr = net.JoinHostPort(u.Hostname(), port)
		if u.User != nil {
			cfg.Username = u.User.Username()
			cfg.Password, _ = u.User.Password()
		}
		if p := strings.Trim(u.Path, "/"); p != "" {
			db, err := strconv.Atoi(p)
			if err != nil || db < 0 {
				return redisadapter.Config{}, false, fmt.Errorf("redisadapter: %s: database %q is not a number", envRedisURL, p)
			}
			cfg.DB = db
		}
		if v := u.Query().Get("db"); v != "" {
			db, err := strconv.Atoi(v)
			if err != nil || db < 0 {
				return redisadapter.Config{}, false, fmt.Errorf("redisadapter: %s: db=%q is not a number", envRedisURL, v)
			}
			cfg.DB = db
		}
	} else {
		port := get(envRedisPort)
		if port == "" {
			port = "6379"
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return redisadapter.Config{}, false, fmt.Errorf("redisadapter: %s=%q is not a port", envRedisPort, port)
		}
		cfg.Addr = net.JoinHostPort(host, port)
	}
	if v := getenv(envRedisUsername); v != "" {
		cfg.Username = v
	}
	if v := getenv(envRedisPassword); v != "" {
		cfg.Password = v
	}
	if v := get(envRedisDB); v != "" {
		db, err := strconv.Atoi(v)
		if err != nil || db < 0 {
			return redisadapter.Config{}, false, fmt.Errorf("redisadapter: %s=%q is not a database number", envRedisDB, v)
		}
		cfg.DB = db
	}
	if v := get(envRedisTLS); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return redisadapter.Config{}, false, fmt.Errorf("redisadapter: %s=%q: not a boolean", envRedisTLS, v)
		}
		useTLS = on
	}
	if useTLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: get(envRedisTLSServerName)}
		if tc.ServerName == "" {
			tc.ServerName, _, _ = net.SplitHostPort(cfg.Addr)
		}
		if v := get(envRedisTLSInsecure); v != "" {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return redisadapter.Config{}, false, fmt.Errorf("redisadapter: %s=%q: not a boolean", envRedisTLSInsecure, v)
			}
			tc.InsecureSkipVerify = on
		}
		if f := get(envRedisTLSCAFile); f != "" {
			pem, err := os.ReadFile(f)
			if err != nil {
				return redisadapter.Config{}, false, fmt.Errorf("redisadapter: %s: %w", envRedisTLSCAFile, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return redisadapter.Config{}, false, fmt.Errorf("redisadapter: %s: no PEM certificate in %s", envRedisTLSCAFile, f)
			}
			tc.RootCAs = pool
		}
		cfg.TLS = tc
	}
	cfg.KeyPrefix = get(envRedisKeyPrefix)
	switch v := strings.ToLower(get(envRedisMode)); v {
	case "", "classic", "pubsub":
		cfg.Mode = redisadapter.Classic
	case "sharded":
		cfg.Mode = redisadapter.Sharded
	case "streams":
		cfg.Mode = redisadapter.Streams
	default:
		return redisadapter.Config{}, false, fmt.Errorf("redisadapter: %s=%q, want classic, sharded or streams", envRedisMode, v)
	}
	switch v := strings.ToLower(get(envRedisSubscriptionMode)); v {
	case "", "dynamic":
		cfg.SubscriptionMode = redisadapter.Dynamic
	case "static":
		cfg.SubscriptionMode = redisadapter.Static
	case "dynamic-private":
		cfg.SubscriptionMode = redisadapter.DynamicPrivate
	default:
		return redisadapter.Config{}, false, fmt.Errorf("redisadapter: %s=%q, want dynamic, static or dynamic-private", envRedisSubscriptionMode, v)
	}
	cfg.StreamName = get(envRedisStreamName)
	cfg.SessionKeyPrefix = get(envRedisSessionKeyPrefix)
	for _, o := range []struct {
		env string
		dst *int64
	}{{envRedisStreamMaxLen, &cfg.MaxLen}, {envRedisStreamReadCount, &cfg.ReadCount}} {
		if v := get(o.env); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return redisadapter.Config{}, false, fmt.Errorf("redisadapter: %s=%q is not a positive number", o.env, v)
			}
			*o.dst = n
		}
	}
	if v := get(envRedisStreamCount); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 1024 {
			return redisadapter.Config{}, false, fmt.Errorf("redisadapter: %s=%q is not a number from 1 to 1024", envRedisStreamCount, v)
		}
		cfg.StreamCount = n
	}
	if v := get(envRedisRequestsTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return redisadapter.Config{}, false, fmt.Errorf("redisadapter: %s=%q is not a positive duration", envRedisRequestsTimeout, v)
		}
		cfg.RequestsTimeout = d
	}
	if err := cfg.Validate(); err != nil {
		return redisadapter.Config{}, false, err
	}
	return cfg, true, nil
}
