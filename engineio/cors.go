package engineio

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CORS configures cross-origin access, with the semantics of the `cors` npm
// middleware that Node's engine.io uses.
type CORS struct {
	// Origins lists the allowed origins ("https://app.example.com"). "*"
	// allows any origin. Ignored when AllowOrigin is set.
	Origins []string
	// AllowOrigin decides per request origin; it takes precedence over Origins.
	AllowOrigin func(origin string) bool
	// Credentials sends Access-Control-Allow-Credentials: true. With "*" the
	// request origin is reflected, since browsers refuse "*" with credentials.
	Credentials bool
	// Methods allowed on preflight. Zero means GET,HEAD,PUT,PATCH,POST,DELETE.
	Methods []string
	// AllowedHeaders allowed on preflight. Zero reflects the headers the
	// browser asks for.
	AllowedHeaders []string
	// MaxAge lets browsers cache a preflight answer. Zero sends no max age.
	MaxAge time.Duration
}

const defaultCORSMethods = "GET,HEAD,PUT,PATCH,POST,DELETE"

// allowed returns the Access-Control-Allow-Origin value for origin, or "".
func (c *CORS) allowed(origin string) (value string, vary bool) {
	if c.AllowOrigin != nil {
		if origin != "" && c.AllowOrigin(origin) {
			return origin, true
		}
		return "", true
	}
	for _, o := range c.Origins {
		if o == "*" {
			if c.Credentials && origin != "" {
				return origin, true
			}
			return "*", false
		}
	}
	for _, o := range c.Origins {
		if strings.EqualFold(o, origin) {
			return origin, true
		}
	}
	return "", len(c.Origins) > 0
}

// apply writes CORS headers and reports whether the request was a preflight
// that has been answered.
func (c *CORS) apply(w http.ResponseWriter, r *http.Request) (handled bool) {
	h := w.Header()
	origin := r.Header.Get("Origin")
	value, vary := c.allowed(origin)
	if value != "" {
		h.Set("Access-Control-Allow-Origin", value)
	}
	if vary {
		h.Add("Vary", "Origin")
	}
	if c.Credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if r.Method != http.MethodOptions {
		return false
	}
	methods := defaultCORSMethods
	if len(c.Methods) > 0 {
		methods = strings.Join(c.Methods, ",")
	}
	h.Set("Access-Control-Allow-Methods", methods)
	if len(c.AllowedHeaders) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(c.AllowedHeaders, ","))
	} else if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
		h.Add("Vary", "Access-Control-Request-Headers")
	}
	if c.MaxAge > 0 {
		h.Set("Access-Control-Max-Age", strconv.Itoa(int(c.MaxAge/time.Second)))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return true
}
