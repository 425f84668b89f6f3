package meter

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// ProxyConfig configures NewProxy.
type ProxyConfig struct {
	Upstream *url.URL // required: scheme and host, optionally a base path
	// PreserveHost sends the client's Host header upstream instead of the
	// upstream's host.
	PreserveHost bool
	Transport    http.RoundTripper // default: a transport tuned for one busy upstream
	Logger       *slog.Logger      // default slog.Default()
}

// NewProxy returns a reverse proxy to cfg.Upstream whose every request is
// recorded by m. Bodies stream both ways; server-sent events and other
// responses of unknown length are flushed as they come; protocol upgrades
// (websockets) pass through. An unreachable upstream is answered 502 and
// recorded as such.
func NewProxy(m *Meter, cfg ProxyConfig) (http.Handler, error) {
	if cfg.Upstream == nil || cfg.Upstream.Scheme == "" || cfg.Upstream.Host == "" {
		return nil, errors.New("meter: Upstream must be an absolute URL such as http://127.0.0.1:9000")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Transport == nil {
		cfg.Transport = &http.Transport{
			Proxy:                 nil, // the upstream is addressed directly
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   1024, // the default of 2 would make every burst open connections
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	up := cfg.Upstream
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.SetXForwarded()
			if cfg.PreserveHost {
				pr.Out.Host = pr.In.Host
			}
		},
		Transport: cfg.Transport,
		ErrorLog:  slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			cfg.Logger.Warn("upstream request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	return m.Middleware(rp), nil
}
