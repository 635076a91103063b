package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/gateway"
)

func mapEnv(kv ...string) env {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

const secret = "config-test-secret-0123456789abcdef"

func TestConfigDevelopmentDefaults(t *testing.T) {
	c, err := loadServeConfig(nil, mapEnv())
	if err != nil {
		t.Fatal(err)
	}
	if !c.dev || !c.secretGenerated || !c.apiKeyGenerated || c.addr != "127.0.0.1:8080" || len(c.auth.Secret) != 64 ||
		len(c.apiKeys) != 1 || !strings.HasPrefix(c.apiKeys[0], "dev_") || !slices.Equal(c.corsOrigins, []string{"*"}) ||
		c.logFormat != "text" || c.logLevel != slog.LevelInfo || c.namespace != "/events" || c.shutdownTimeout != 30*time.Second || c.recoveryWindow != 0 {
		t.Fatalf("config %+v", c)
	}
	if c.requestRate != 0 || c.requestBurst != gateway.DefaultClientEventBurst || c.metricsAddr != "" {
		t.Errorf("request limit %v/%d, metrics %q: want the gateway's defaults, metrics on the main listener", c.requestRate, c.requestBurst, c.metricsAddr)
	}
	if off, err := loadServeConfig(nil, mapEnv("CLIENT_REQUEST_RATE", "off")); err != nil || off.requestRate >= 0 {
		t.Errorf("CLIENT_REQUEST_RATE=off: rate %v, %v", off.requestRate, err)
	}
	if c.httpReadTimeout != 30*time.Second || c.httpIdleTimeout != time.Minute || c.maxHeaderBytes != 16<<10 {
		t.Errorf("HTTP limits: read %v, idle %v, headers %d", c.httpReadTimeout, c.httpIdleTimeout, c.maxHeaderBytes)
	}
	if c.publishRate != defaultPublishRate || c.publishBurst != 0 {
		t.Errorf("publish limit %v/%d, want %d/s with httpapi's burst", c.publishRate, c.publishBurst, defaultPublishRate)
	}
	if off, err := loadServeConfig(nil, mapEnv("PUBLISH_RATE", "off")); err != nil || off.publishRate != 0 {
		t.Errorf("PUBLISH_RATE=off: rate %v (want 0, no limit), %v", off.publishRate, err)
	}
	// Development mode listens on this machine only, unless told otherwise.
	if c, err := loadServeConfig(nil, mapEnv("PORT", "9001")); err != nil || c.addr != "127.0.0.1:9001" {
		t.Errorf("dev mode with PORT: addr %q, %v", c.addr, err)
	}
	if c, err := loadServeConfig([]string{"--addr", ":9002"}, mapEnv()); err != nil || c.addr != ":9002" {
		t.Errorf("dev mode with --addr: addr %q, %v", c.addr, err)
	}
	// Each start generates its own secret and key.
	c2, _ := loadServeConfig(nil, mapEnv())
	if c2.auth.Secret == c.auth.Secret || c2.apiKeys[0] == c.apiKeys[0] {
		t.Error("generated credentials repeat")
	}
}

func TestConfigProduction(t *testing.T) {
	c, err := loadServeConfig(nil, mapEnv(
		"PORT", "9000",
		"JWT_ACCESS_SECRET", secret,
		"JWT_PREVIOUS_SECRET", "old-secret",
		"JWT_ALGORITHMS", "HS256, HS512",
		"JWT_ISSUER", "operate-api",
		"JWT_AUDIENCE", "operate-web",
		"JWT_ORG_CLAIM", "tenant",
		"JWT_LEEWAY", "5s",
		"API_KEYS", "key-one-0123456789abcdef, key-two-0123456789abcdef,",
		"CORS_ORIGIN", "https://app.operate.example,https://admin.operate.example",
		"CORS_CREDENTIALS", "true",
		"LOG_LEVEL", "debug",
		"EVENTS_NAMESPACE", "/rt",
		"SOCKETIO_PATH", "/ws/",
		"SHUTDOWN_TIMEOUT", "10s",
		"MAX_BODY_BYTES", "2048",
		"MAX_BATCH_EVENTS", "10",
		"IDEMPOTENCY_TTL", "1h",
		"IDEMPOTENCY_MAX_KEYS", "50",
		"TOKEN_EXPIRY_WARNING", "2m",
		"RECOVERY_WINDOW", "90s",
		"RECOVERY_MAX_EVENTS", "5000",
		"METRICS_ADDR", "127.0.0.1:9100",
		"CLIENT_REQUEST_RATE", "2.5",
		"CLIENT_REQUEST_BURST", "5",
		"PUBLISH_RATE", "50",
		"PUBLISH_BURST", "200",
		"PING_INTERVAL", "10s",
		"PING_TIMEOUT", "5s",
		"WRITE_TIMEOUT", "3s",
		"HTTP_READ_TIMEOUT", "20s",
		"HTTP_IDLE_TIMEOUT", "2m",
		"MAX_HEADER_BYTES", "32768",
		"MAX_CONNECTIONS_PER_ADDRESS", "off",
		"MAX_CONNECTIONS_PER_USER", "20",
		"TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7",
	))
	if err != nil {
		t.Fatal(err)
	}
	a := c.auth
	if c.dev || c.addr != ":9000" || a.Secret != secret || a.PreviousSecret != "old-secret" ||
		!slices.Equal(a.Algorithms, []string{"HS256", "HS512"}) || a.Issuer != "operate-api" || a.Audience != "operate-web" ||
		a.OrganizationClaim != "tenant" || a.Leeway != 5*time.Second {
		t.Fatalf("auth config %+v (dev %t, addr %s)", a, c.dev, c.addr)
	}
	if len(c.apiKeys) != 2 || !slices.Equal(c.corsOrigins, []string{"https://app.operate.example", "https://admin.operate.example"}) ||
		!c.corsCredentials || c.logLevel != slog.LevelDebug || c.logFormat != "json" || c.namespace != "/rt" || c.path != "/ws/" ||
		c.shutdownTimeout != 10*time.Second || c.maxBody != 2048 || c.maxBatch != 10 || c.idemTTL != time.Hour ||
		c.idemMaxKeys != 50 || c.expiryWarning != 2*time.Minute || c.recoveryWindow != 90*time.Second || c.recoveryEvents != 5000 || c.metricsAddr != "127.0.0.1:9100" ||
		c.requestRate != 2.5 || c.requestBurst != 5 || c.publishRate != 50 || c.publishBurst != 200 ||
		c.pingInterval != 10*time.Second || c.pingTimeout != 5*time.Second || c.writeTimeout != 3*time.Second ||
		c.httpReadTimeout != 20*time.Second || c.httpIdleTimeout != 2*time.Minute || c.maxHeaderBytes != 32768 ||
		c.maxConnsPerAddress != -1 || c.maxConnsPerUser != 20 || c.maxConnsPerOrg != 0 ||
		len(c.trustedProxies) != 2 || c.trustedProxies[1].String() != "192.168.1.7/32" {
		t.Fatalf("config %+v", c)
	}
}

func TestConfigKeySources(t *testing.T) {
	pemFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(pemFile, []byte("-----BEGIN PUBLIC KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadServeConfig(nil, mapEnv("JWT_PUBLIC_KEY_FILE", pemFile, "API_KEYS", "key-one-0123456789abcdef"))
	if err != nil || c.dev || string(c.auth.PublicKeyPEM) != "-----BEGIN PUBLIC KEY-----\n" {
		t.Fatalf("PEM file: %+v, %v", c, err)
	}
	c, err = loadServeConfig(nil, mapEnv("JWKS_URL", "https://id.example/jwks.json", "JWKS_ALLOW_INSECURE_HTTP", "true"))
	if err != nil || c.dev || c.auth.JWKSURL != "https://id.example/jwks.json" || !c.auth.AllowInsecureJWKSURL || len(c.apiKeys) != 0 {
		t.Fatalf("JWKS: %+v, %v", c, err)
	}
	// Development mode with a real secret keeps it.
	c, err = loadServeConfig([]string{"--dev"}, mapEnv("JWT_SECRET", secret))
	if err != nil || !c.dev || c.secretGenerated || c.auth.Secret != secret || !c.apiKeyGenerated {
		t.Fatalf("--dev with a secret: %+v, %v", c, err)
	}
}

func TestConfigFlagsOverrideEnvironment(t *testing.T) {
	c, err := loadServeConfig(
		[]string{"--addr", "127.0.0.1:7000", "--log-level", "warn", "--log-format", "json", "--cors-origins", "https://a.example", "--namespace", "/x", "--shutdown-timeout", "3s"},
		mapEnv("PORT", "9000", "LOG_LEVEL", "debug", "CORS_ORIGIN", "https://b.example", "EVENTS_NAMESPACE", "/y", "SHUTDOWN_TIMEOUT", "1m"))
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != "127.0.0.1:7000" || c.logLevel != slog.LevelWarn || c.logFormat != "json" ||
		!slices.Equal(c.corsOrigins, []string{"https://a.example"}) || c.namespace != "/x" || c.shutdownTimeout != 3*time.Second {
		t.Fatalf("config %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  env
		want string
	}{
		{"production without a key", nil, mapEnv("DEV_MODE", "false"), "no JWT key is configured"},
		{"--dev=false without a key", []string{"--dev=false"}, mapEnv(), "no JWT key is configured"},
		{"conflicting secrets", nil, mapEnv("JWT_SECRET", secret, "JWT_ACCESS_SECRET", "other"), "JWT_SECRET and JWT_ACCESS_SECRET"},
		{"conflicting CORS", nil, mapEnv("CORS_ORIGINS", "https://a", "CORS_ORIGIN", "https://b"), "CORS_ORIGINS and CORS_ORIGIN"},
		{"two PEM sources", nil, mapEnv("JWT_PUBLIC_KEY", "x", "JWT_PUBLIC_KEY_FILE", "/x"), "both set"},
		{"missing PEM file", nil, mapEnv("JWT_PUBLIC_KEY_FILE", "/nonexistent/key.pem"), "JWT_PUBLIC_KEY_FILE"},
		{"bad port", nil, mapEnv("PORT", "http"), "PORT"},
		{"bad level", nil, mapEnv("LOG_LEVEL", "loud"), "LOG_LEVEL"},
		{"bad format", nil, mapEnv("LOG_FORMAT", "xml"), "LOG_FORMAT"},
		{"bad duration", nil, mapEnv("SHUTDOWN_TIMEOUT", "soon"), "SHUTDOWN_TIMEOUT"},
		{"bad leeway", nil, mapEnv("JWT_LEEWAY", "30"), "JWT_LEEWAY"},
		{"negative leeway", nil, mapEnv("JWT_LEEWAY", "-5s"), "JWT_LEEWAY must not be negative"},
		{"bad integer", nil, mapEnv("MAX_BATCH_EVENTS", "-1"), "MAX_BATCH_EVENTS"},
		{"negative recovery window", nil, mapEnv("RECOVERY_WINDOW", "-1m"), "RECOVERY_WINDOW must not be negative"},
		{"bad recovery bound", nil, mapEnv("RECOVERY_MAX_EVENTS", "lots"), "RECOVERY_MAX_EVENTS"},
		{"bad request rate", nil, mapEnv("CLIENT_REQUEST_RATE", "-3"), "CLIENT_REQUEST_RATE"},
		{"bad request burst", nil, mapEnv("CLIENT_REQUEST_BURST", "0"), "CLIENT_REQUEST_BURST"},
		{"bad publish rate", nil, mapEnv("PUBLISH_RATE", "fast"), "PUBLISH_RATE"},
		{"publish burst below a batch", nil, mapEnv("PUBLISH_BURST", "99"), "PUBLISH_BURST=99 is below MAX_BATCH_EVENTS=100"},
		{"bad ping interval", nil, mapEnv("PING_INTERVAL", "25"), "PING_INTERVAL"},
		{"negative ping timeout", nil, mapEnv("PING_TIMEOUT", "-1s"), "PING_TIMEOUT must be at least 1ms"},
		{"tiny write timeout", nil, mapEnv("WRITE_TIMEOUT", "1ns"), "WRITE_TIMEOUT must be at least 1ms"},
		{"zero read timeout", nil, mapEnv("HTTP_READ_TIMEOUT", "0s"), "HTTP_READ_TIMEOUT must be positive"},
		{"bad idle timeout", nil, mapEnv("HTTP_IDLE_TIMEOUT", "a while"), "HTTP_IDLE_TIMEOUT"},
		{"tiny header limit", nil, mapEnv("MAX_HEADER_BYTES", "100"), "MAX_HEADER_BYTES=100 is too small"},
		{"bad connection cap", nil, mapEnv("MAX_CONNECTIONS_PER_ORG", "lots"), "MAX_CONNECTIONS_PER_ORG"},
		{"bad trusted proxy", nil, mapEnv("TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal"), `TRUSTED_PROXIES: "proxy.internal"`},
		{"bad boolean", nil, mapEnv("DEV_MODE", "maybe"), "DEV_MODE"},
		{"short API key", nil, mapEnv("API_KEYS", "secret"), "API_KEYS: key 1"},
		{"short admin key", nil, mapEnv("ADMIN_KEY", "secret"), "ADMIN_KEY is 6 characters long"},
		{"Admin UI without a password", nil, mapEnv("ADMIN_UI", "on"), "the Admin UI needs a password"},
		{"Admin UI user without a password", nil, mapEnv("ADMIN_UI_USERNAME", "ops"), "the Admin UI needs a password"},
		{"bad ADMIN_UI", nil, mapEnv("ADMIN_UI", "maybe", "ADMIN_KEY", "admin-key-0123456789abcdef"), `ADMIN_UI="maybe"`},
		{"bad ADMIN_UI_READONLY", nil, mapEnv("ADMIN_UI_PASSWORD", "a-password-0123456789", "ADMIN_UI_READONLY", "no"), "ADMIN_UI_READONLY"},
		{"bad PRESENCE", nil, mapEnv("PRESENCE", "maybe"), `PRESENCE="maybe"`},
		{"short PRESENCE_TTL", nil, mapEnv("PRESENCE_TTL", "100ms"), "PRESENCE_TTL must be at least 1s"},
		{"negative PRESENCE_GRACE", nil, mapEnv("PRESENCE_GRACE", "-1s"), "PRESENCE_GRACE must not be negative"},
		{"webhook without a secret", nil, mapEnv("WEBHOOK_URL", "https://api.example/hooks"), "WEBHOOK_URL needs WEBHOOK_SECRET"},
		{"webhook secret without a URL", nil, mapEnv("WEBHOOK_SECRET", "whsec_0123456789abcdef"), "WEBHOOK_SECRET is set without WEBHOOK_URL"},
		{"bad webhook URL", nil, mapEnv("WEBHOOK_URL", "api.example/hooks", "WEBHOOK_SECRET", "whsec_0123456789abcdef"), "not an http(s) URL"},
		{"bad webhook batch", nil, mapEnv("WEBHOOK_URL", "https://api.example/hooks", "WEBHOOK_SECRET", "whsec_0123456789abcdef", "WEBHOOK_BATCH_SIZE", "0"), "WEBHOOK_BATCH_SIZE"},
		{"bad webhook wait", nil, mapEnv("WEBHOOK_URL", "https://api.example/hooks", "WEBHOOK_SECRET", "whsec_0123456789abcdef", "WEBHOOK_BATCH_WAIT", "0s"), "WEBHOOK_BATCH_WAIT must be positive"},
		{"bad memory return interval", nil, mapEnv("MEMORY_RETURN_INTERVAL", "often"), "MEMORY_RETURN_INTERVAL"},
		{"tiny memory return interval", nil, mapEnv("MEMORY_RETURN_INTERVAL", "1ms"), "MEMORY_RETURN_INTERVAL must be at least 100ms"},
		{"unknown flag", []string{"--port", "80"}, mapEnv(), "flag provided but not defined"},
		{"stray argument", []string{"now"}, mapEnv(), `unexpected argument "now"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadServeConfig(tc.args, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestBuildPayload(t *testing.T) {
	p, err := buildPayload([]byte(`{"invoiceId":"i","amount":12345678901234567890}`), "org-1", "u-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p); got != `{"amount":12345678901234567890,"invoiceId":"i","organizationId":"org-1","userId":"u-1"}` {
		t.Errorf("payload %s", got)
	}
	for _, tc := range []struct{ data, org, want string }{
		{`[1]`, "o", "JSON object"},
		{`null`, "o", "JSON object"},
		{`{"a":1} {}`, "o", "after its JSON object"},
		{`{"organizationId":"x"}`, "o", "flag says"},
		{`{}`, "", "--org is required"},
	} {
		if _, err := buildPayload([]byte(tc.data), tc.org, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.data, err, tc.want)
		}
	}
}

// TestConfigLeeway: JWT_LEEWAY=0 means no leeway, which auth.Config spells
// as a negative duration (its zero is the 30 s default): a connection whose
// token expired must not live 30 s longer because the operator wrote 0.
func TestConfigLeeway(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  time.Duration
	}{
		{"", 0}, // auth.DefaultLeeway
		{"0", -1},
		{"0s", -1},
		{"2s", 2 * time.Second},
	} {
		c, err := loadServeConfig(nil, mapEnv("JWT_SECRET", secret, "JWT_LEEWAY", tc.value))
		if err != nil {
			t.Fatalf("JWT_LEEWAY=%q: %v", tc.value, err)
		}
		if c.auth.Leeway != tc.want {
			t.Errorf("JWT_LEEWAY=%q: auth.Config.Leeway = %v, want %v", tc.value, c.auth.Leeway, tc.want)
		}
	}
}

func TestConfigAdmin(t *testing.T) {
	const key = "admin-key-0123456789abcdef"
	c, err := loadServeConfig(nil, mapEnv())
	if err != nil || c.adminKey != "" || c.adminUI != nil {
		t.Fatalf("unconfigured: key %q, UI %+v, %v: want both off", c.adminKey, c.adminUI, err)
	}
	// The key alone: the status, and the UI with the key as its password.
	c, err = loadServeConfig(nil, mapEnv("ADMIN_KEY", key))
	if err != nil || c.adminKey != key || c.adminUI == nil || c.adminUI.Password != key || c.adminUI.Username != "" ||
		c.adminUI.Operations || c.adminUI.Events {
		t.Fatalf("ADMIN_KEY: key %q, UI %+v, %v", c.adminKey, c.adminUI, err)
	}
	c, err = loadServeConfig(nil, mapEnv("ADMIN_KEY", key, "ADMIN_UI", "off"))
	if err != nil || c.adminKey != key || c.adminUI != nil {
		t.Fatalf("ADMIN_UI=off: UI %+v, %v", c.adminUI, err)
	}
	c, err = loadServeConfig(nil, mapEnv("ADMIN_UI_USERNAME", "ops", "ADMIN_UI_PASSWORD", "a-password-0123456789",
		"ADMIN_UI_READONLY", "false", "ADMIN_UI_EVENTS", "true"))
	if err != nil || c.adminKey != "" || c.adminUI == nil || c.adminUI.Username != "ops" || c.adminUI.Password != "a-password-0123456789" ||
		!c.adminUI.Operations || !c.adminUI.Events {
		t.Fatalf("UI credentials: key %q, UI %+v, %v", c.adminKey, c.adminUI, err)
	}
	if c, err := loadServeConfig(nil, mapEnv("ADMIN_UI_PASSWORD", "a-password-0123456789", "ADMIN_UI_READONLY", "true")); err != nil || c.adminUI.Operations {
		t.Fatalf("ADMIN_UI_READONLY=true: UI %+v, %v", c.adminUI, err)
	}
}
