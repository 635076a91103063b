package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/socketio/redisadapter"
)

func TestRedisConfigFromEnv(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, selfSigned(t), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		env   map[string]string
		ok    bool
		err   string
		check func(redisadapter.Config) bool
	}{
		{name: "nothing set", env: map[string]string{}, ok: false},
		{name: "disabled", env: map[string]string{"REDIS_HOST": "r", "REDIS_ENABLED": "false"}, ok: false},
		{name: "seed variables", env: map[string]string{"REDIS_HOST": "redis.internal", "REDIS_PORT": "6380", "REDIS_USERNAME": "gw", "REDIS_PASSWORD": "s3cret"}, ok: true,
			check: func(c redisadapter.Config) bool {
				return c.Addr == "redis.internal:6380" && c.Username == "gw" && c.Password == "s3cret" && c.Mode == redisadapter.Classic && c.TLS == nil
			}},
		{name: "host only", env: map[string]string{"REDIS_HOST": "10.0.0.5"}, ok: true,
			check: func(c redisadapter.Config) bool { return c.Addr == "10.0.0.5:6379" }},
		{name: "IPv6 host", env: map[string]string{"REDIS_HOST": "::1", "REDIS_PORT": "7000"}, ok: true,
			check: func(c redisadapter.Config) bool { return c.Addr == "[::1]:7000" }},
		{name: "URL", env: map[string]string{"REDIS_URL": "redis://u:p%40ss@cache:6390/3"}, ok: true,
			check: func(c redisadapter.Config) bool {
				return c.Addr == "cache:6390" && c.Username == "u" && c.Password == "p@ss" && c.DB == 3
			}},
		{name: "URL wins over host, password overrides", env: map[string]string{"REDIS_URL": "rediss://:old@cache", "REDIS_HOST": "ignored", "REDIS_PASSWORD": "new"}, ok: true,
			check: func(c redisadapter.Config) bool {
				return c.Addr == "cache:6379" && c.Password == "new" && c.TLS != nil && c.TLS.ServerName == "cache"
			}},
		{name: "TLS with CA and sharded", env: map[string]string{"REDIS_HOST": "h", "REDIS_TLS": "true", "REDIS_TLS_CA_FILE": ca,
			"REDIS_ADAPTER_MODE": "sharded", "REDIS_SUBSCRIPTION_MODE": "dynamic-private", "REDIS_KEY_PREFIX": "app", "REDIS_REQUESTS_TIMEOUT": "2s", "REDIS_DB": "2"}, ok: true,
			check: func(c redisadapter.Config) bool {
				return c.TLS != nil && c.TLS.RootCAs != nil && c.Mode == redisadapter.Sharded && c.SubscriptionMode == redisadapter.DynamicPrivate &&
					c.KeyPrefix == "app" && c.RequestsTimeout == 2*time.Second && c.DB == 2
			}},
		{name: "static mode", env: map[string]string{"REDIS_HOST": "h", "REDIS_ADAPTER_MODE": "SHARDED", "REDIS_SUBSCRIPTION_MODE": "static"}, ok: true,
			check: func(c redisadapter.Config) bool { return c.SubscriptionMode == redisadapter.Static }},
		{name: "streams", env: map[string]string{"REDIS_HOST": "h", "REDIS_ADAPTER_MODE": "streams", "REDIS_STREAM_NAME": "app-events",
			"REDIS_STREAM_COUNT": "4", "REDIS_STREAM_MAXLEN": "50000", "REDIS_STREAM_READ_COUNT": "500", "REDIS_SESSION_KEY_PREFIX": "app:session:"}, ok: true,
			check: func(c redisadapter.Config) bool {
				return c.Mode == redisadapter.Streams && c.StreamName == "app-events" && c.StreamCount == 4 && c.MaxLen == 50000 &&
					c.ReadCount == 500 && c.SessionKeyPrefix == "app:session:"
			}},
		{name: "bad stream maxlen", env: map[string]string{"REDIS_HOST": "h", "REDIS_STREAM_MAXLEN": "-1"}, err: "REDIS_STREAM_MAXLEN"},
		{name: "bad stream count", env: map[string]string{"REDIS_HOST": "h", "REDIS_STREAM_COUNT": "0"}, err: "REDIS_STREAM_COUNT"},
		{name: "bad port", env: map[string]string{"REDIS_HOST": "h", "REDIS_PORT": "http"}, err: "REDIS_PORT"},
		{name: "bad scheme", env: map[string]string{"REDIS_URL": "http://h"}, err: "scheme"},
		{name: "bad mode", env: map[string]string{"REDIS_HOST": "h", "REDIS_ADAPTER_MODE": "cluster"}, err: "REDIS_ADAPTER_MODE"},
		{name: "bad subscription mode", env: map[string]string{"REDIS_HOST": "h", "REDIS_SUBSCRIPTION_MODE": "x"}, err: "REDIS_SUBSCRIPTION_MODE"},
		{name: "bad db", env: map[string]string{"REDIS_URL": "redis://h/x"}, err: "database"},
		{name: "bad enabled", env: map[string]string{"REDIS_HOST": "h", "REDIS_ENABLED": "maybe"}, err: "REDIS_ENABLED"},
		{name: "missing CA", env: map[string]string{"REDIS_HOST": "h", "REDIS_TLS": "1", "REDIS_TLS_CA_FILE": "/nonexistent"}, err: "REDIS_TLS_CA_FILE"},
		{name: "bad timeout", env: map[string]string{"REDIS_HOST": "h", "REDIS_REQUESTS_TIMEOUT": "5"}, err: "REDIS_REQUESTS_TIMEOUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ok, err := redisConfigFromEnv(func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one about %s", err, tc.err)
				}
				return
			}
			if err != nil || ok != tc.ok {
				t.Fatalf("ok = %v, err = %v", ok, err)
			}
			if tc.check != nil && !tc.check(cfg) {
				t.Errorf("config %+v", cfg)
			}
			if ok {
				c, err := redisadapter.New(cfg)
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				_ = c.Close()
			}
		})
	}
}

// selfSigned returns a throwaway self-signed certificate in PEM.
func selfSigned(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
