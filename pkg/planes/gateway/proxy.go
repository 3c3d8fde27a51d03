package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/macronode/macronode/pkg/httpx"
	"github.com/macronode/macronode/pkg/routes"
)

// dialTimeout caps connecting to a backend: they are local, so a backend
// that does not accept within it is down.
const dialTimeout = time.Second

// flushInterval bounds how long response bytes may wait in the gateway's
// write buffer. A response of unknown length (chunked, a stream) or of type
// text/event-stream is flushed on every write by httputil.ReverseProxy
// itself; one of known length is written through the server's 4 KiB buffer
// and flushed at its end, so a small blob leaves in one or two writes
// instead of one per backend read, and a large one flushes as the buffer
// fills. The interval only matters for a known-length body that trickles.
const flushInterval = 10 * time.Millisecond

// proxyBufBytes is the size of the pooled buffers the reverse proxy copies
// response bodies through (its own default, allocated per request otherwise).
const proxyBufBytes = 32 << 10

// bufferPool is httputil.BufferPool over a sync.Pool.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, proxyBufBytes); return &b }}}
}

func (bp *bufferPool) Get() []byte { return *bp.p.Get().(*[]byte) }

func (bp *bufferPool) Put(b []byte) {
	if cap(b) == proxyBufBytes {
		b = b[:proxyBufBytes]
		bp.p.Put(&b)
	}
}

// proxyBuffers is shared by every backend.
var proxyBuffers = newBufferPool()

// statusClientClosed is logged and counted (never seen by anyone) when the
// client went away before the backend answered, as nginx does.
const statusClientClosed = 499

// backend is one proxied route: a reverse proxy to one plane, its body cap
// and its deadline.
type backend struct {
	s         *Server
	name      string
	route     routes.Route
	target    *url.URL // nil: not configured
	maxBody   int64
	deadline  time.Duration // whole-request deadline; 0 for streams
	transport *http.Transport
	direct    *directTransport // no body or a small one of known length; nil: none configured
	proxy     *httputil.ReverseProxy
	// modify, when set, adjusts the backend's response before it is
	// copied to the client; an error is answered by proxyError.
	modify func(*http.Response, *reqState) error
}

func newBackend(s *Server, r routes.Route, addr string) (*backend, error) {
	maxBody, deadline, headerTimeout := s.cfg.limits(r.Name)
	b := &backend{s: s, name: r.Name, route: r, maxBody: maxBody, deadline: deadline}
	target, err := parseBackendAddr(addr)
	if err != nil {
		return nil, err
	}
	b.target = target
	dial := (&net.Dialer{
		Timeout:   min(dialTimeout, headerTimeout),
		KeepAlive: 30 * time.Second,
	}).DialContext
	b.transport = &http.Transport{
		Proxy:                 nil, // never route backend traffic through an environment proxy
		DialContext:           dial,
		ResponseHeaderTimeout: headerTimeout,
		TLSHandshakeTimeout:   headerTimeout,
		ExpectContinueTimeout: time.Second,
		// Every client connection may hold a backend connection at once:
		// an idle pool smaller than the concurrency closes and redials
		// connections under load.
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		// Pass bodies through as the backend encoded them.
		DisableCompression: true,
	}
	if target == nil {
		return b, nil
	}
	var rt http.RoundTripper = b.transport
	if target.Scheme == "http" {
		b.direct = &directTransport{host: target.Host, dial: dial, headerTimeout: headerTimeout,
			maxIdle: 1024, next: b.transport}
		rt = b.direct
	}
	b.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			if s.trusted.peerTrusted(pr.In) {
				// SetXForwarded appends the proxy to the chain it sent.
				pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			}
			pr.SetXForwarded()
			// No protocol upgrades through the gateway: a hijacked
			// connection would escape every limit above.
			pr.Out.Header.Del("Upgrade")
			pr.Out.Header.Del("Connection")
		},
		// The gateway's RequestID middleware already set the id the
		// backend echoes: copying the echo would send it twice.
		ModifyResponse: func(res *http.Response) error {
			var err error
			if st, ok := res.Request.Context().Value(stateKey{}).(*reqState); ok && b.modify != nil {
				err = b.modify(res, st)
			}
			res.Header.Del(httpx.HeaderRequestID)
			return err
		},
		Transport: &retryTransport{base: rt, delay: retryDelay, retried: func() {
			s.m.backendRetries.WithLabelValues(r.Name).Inc()
		}},
		FlushInterval: flushInterval,
		BufferPool:    proxyBuffers,
		ErrorHandler:  b.proxyError,
		ErrorLog: s.log.StandardLogger(&hclog.StandardLoggerOptions{
			ForceLevel: hclog.Debug,
		}),
	}
	return b, nil
}

// parseBackendAddr accepts host:port or an http(s) URL; "" means none.
func parseBackendAddr(addr string) (*url.URL, error) {
	if addr == "" {
		return nil, nil
	}
	raw := addr
	if !containsScheme(addr) {
		raw = "http://" + addr
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bad backend address %q: %w", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("bad backend address %q: scheme must be http or https", addr)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("bad backend address %q: no host", addr)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("bad backend address %q: only scheme, host, port and path are allowed", addr)
	}
	return u, nil
}

func containsScheme(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == ':' {
			return s[i+1] == '/' && s[i+2] == '/'
		}
	}
	return false
}

// reqState travels in the outbound request's context so the error handler
// can tell a client's body failure from a backend failure.
type reqState struct {
	progress *httpx.Progress
	pattern  string // the gateway mux pattern that matched
	addr     string // its {addr} wildcard, if any
	local    bool   // the client wants local bytes only (noRemote)
	mu       sync.Mutex
	bodyErr  error
}

type stateKey struct{}

// trackedBody records the first non-EOF error reading the client's body.
type trackedBody struct {
	io.ReadCloser
	st *reqState
}

func (t trackedBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		t.st.mu.Lock()
		if t.st.bodyErr == nil {
			t.st.bodyErr = err
		}
		t.st.mu.Unlock()
	}
	return n, err
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if b.proxy == nil {
		httpx.Errorf(w, http.StatusServiceUnavailable, "backend_not_configured",
			"backend %s not configured (start svc-gateway with %s)", b.name, b.route.Flag)
		return
	}
	// Every route is bounded by progress, not length: the server's
	// whole-request timeouts give way to the idle deadline on the body and
	// on each response write.
	p := httpx.NewProgress(w, b.s.cfg.IOIdleTimeout)
	defer p.Finish(r)
	st := &reqState{progress: p, pattern: r.Pattern, addr: r.PathValue("addr"), local: noRemote(r)}
	ctx := context.WithValue(r.Context(), stateKey{}, st)
	if b.deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.deadline)
		defer cancel()
	}
	r = r.WithContext(ctx)
	r.Body = p.Body(r.Body)
	if !httpx.CapBody(w, r, b.maxBody) {
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = trackedBody{ReadCloser: r.Body, st: st}
	}
	b.proxy.ServeHTTP(p.Writer(w), r)
}

// proxyError answers a failed round trip to the backend with a JSON error.
// r is the outbound request; its context descends from the client's.
func (b *backend) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	log := b.s.log.With("backend", b.name, "path", r.URL.Path, "request_id", r.Header.Get(httpx.HeaderRequestID))
	var bodyErr error
	stalled := false
	if st, ok := r.Context().Value(stateKey{}).(*reqState); ok {
		st.mu.Lock()
		bodyErr = st.bodyErr
		st.mu.Unlock()
		stalled = st.progress.Stalled()
	}
	ctxErr := r.Context().Err()
	var ne net.Error
	var re *remoteError
	switch {
	case httpx.IsTooLarge(bodyErr) || httpx.IsTooLarge(err):
		httpx.Errorf(w, http.StatusRequestEntityTooLarge, "", "request body exceeds the %d-byte limit of %s routes", b.maxBody, b.route.Prefix)
	case stalled || httpx.IsIdle(bodyErr):
		// The client stalled its body: net/http cancels the request when
		// the read fails, but the client is still there to hear why.
		log.Debug("client request body stalled", "idle_timeout", b.s.cfg.IOIdleTimeout, "error", bodyErr)
		if bodyErr == nil {
			bodyErr = fmt.Errorf("%w (%s)", httpx.ErrIdle, b.s.cfg.IOIdleTimeout)
		}
		httpx.IdleError(w, bodyErr)
	case errors.Is(ctxErr, context.Canceled):
		// The client went away: nobody reads an answer. 499 only labels
		// the metric and the access log.
		log.Debug("client closed the request", "error", err)
		w.WriteHeader(statusClientClosed)
	case errors.As(err, &re):
		if re.status >= 500 {
			log.Warn("remote fetch failed", "status", re.status, "error", err)
		}
		httpx.Error(w, re.status, re.code, err.Error())
	case bodyErr != nil:
		log.Debug("client request body failed", "error", bodyErr)
		httpx.Errorf(w, http.StatusBadRequest, "bad_body", "reading the request body failed: %v", bodyErr)
	case errors.Is(ctxErr, context.DeadlineExceeded):
		b.s.m.backendErrors.WithLabelValues(b.name).Inc()
		log.Warn("request deadline passed", "deadline", b.deadline, "error", err)
		httpx.Errorf(w, http.StatusGatewayTimeout, "backend_timeout",
			"backend %s did not answer within the %s request deadline", b.name, b.deadline)
	case isDialError(err):
		b.s.m.backendErrors.WithLabelValues(b.name).Inc()
		log.Warn("backend unreachable", "error", err)
		httpx.Errorf(w, http.StatusServiceUnavailable, "backend_down", "backend %s unavailable: %v", b.name, err)
	case errors.As(err, &ne) && ne.Timeout():
		b.s.m.backendErrors.WithLabelValues(b.name).Inc()
		log.Warn("backend timed out", "error", err)
		httpx.Errorf(w, http.StatusGatewayTimeout, "backend_timeout", "backend %s timed out: %v", b.name, err)
	default:
		// Reset, EOF, refused upgrade...: the backend failed mid-request
		// (typically it died); a retry will meet its restart.
		b.s.m.backendErrors.WithLabelValues(b.name).Inc()
		log.Warn("backend request failed", "error", err)
		httpx.Errorf(w, http.StatusServiceUnavailable, "backend_down", "backend %s unavailable: %v", b.name, err)
	}
}

// isDialError reports a failure to connect: refused, unreachable, or a dial
// that timed out. These mean "down", answered 503 at once.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}
