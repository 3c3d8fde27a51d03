package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/macronode/macronode/pkg/admin"
	"github.com/macronode/macronode/pkg/config"
	"github.com/macronode/macronode/pkg/httpx"
)

// clientTimeout bounds each admin API request.
const clientTimeout = 10 * time.Second

// maxResponseBytes caps what the client reads from the admin API.
const maxResponseBytes = 8 << 20

// client talks to a running node's admin API.
type client struct {
	base  string // "http://127.0.0.1:8080"
	token string
	http  *http.Client
}

// apiError is a JSON error answer of the admin API and its HTTP status.
type apiError struct {
	Status int
	Body   httpx.ErrorBody
	Raw    []byte // the answer as served (at most maxResponseBytes)
}

func (e *apiError) Error() string {
	if e.Body.Code != "" {
		return fmt.Sprintf("%s (%s, HTTP %d)", e.Body.Error, e.Body.Code, e.Status)
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Body.Error, e.Status)
}

// newClient builds a client for the admin API that cfg describes. A
// wildcard listen host is reached on loopback. With admin TLS the server
// certificate is trusted if the system trusts it or it is the configured
// certificate itself (a self-signed admin cert).
func newClient(cfg *config.Config) (*client, error) {
	host, port, err := net.SplitHostPort(cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("http_addr %q: %w", cfg.HTTPAddr, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	scheme := "http"
	if cfg.AdminTLS.Cert != "" {
		scheme = "https"
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(cfg.AdminTLS.Cert)
		if err != nil {
			return nil, fmt.Errorf("admin TLS certificate: %w", err)
		}
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &client{
		base:  scheme + "://" + net.JoinHostPort(host, port),
		token: cfg.AdminToken,
		http:  &http.Client{Transport: tr, Timeout: clientTimeout},
	}, nil
}

// close releases the client's idle connections.
func (cl *client) close() { cl.http.CloseIdleConnections() }

// do sends a request and decodes a 2xx JSON answer into out (if non-nil).
func (cl *client) do(ctx context.Context, method, path string, out any) error {
	return cl.doReader(ctx, method, path, nil, out)
}

// doReader is do with a JSON request body (nil: none).
func (cl *client) doReader(ctx context.Context, method, path string, reqBody io.Reader, out any) error {
	body, err := cl.raw(ctx, method, path, reqBody)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
	}
	return nil
}

// raw sends a request and returns the body of a 2xx answer as served; any
// other answer is an *apiError.
func (cl *client) raw(ctx context.Context, method, path string, reqBody io.Reader) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, cl.base+path, reqBody)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if reqBody != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if cl.token != "" {
		req.Header.Set("Authorization", "Bearer "+cl.token)
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("no node running at %s (is `macronode run` up?)", cl.base)
		}
		return nil, fmt.Errorf("%s %s: %w", method, cl.base+path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := &apiError{Status: resp.StatusCode, Raw: body}
		if json.Unmarshal(body, &ae.Body) != nil || ae.Body.Error == "" {
			ae.Body.Error = strings.TrimSpace(truncate(string(body), 200))
			if ae.Body.Error == "" {
				ae.Body.Error = http.StatusText(resp.StatusCode)
			}
		}
		return nil, ae
	}
	return body, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func (cl *client) status(ctx context.Context) (*admin.StatusResponse, error) {
	var doc admin.StatusResponse
	if err := cl.do(ctx, http.MethodGet, "/api/v1/status", &doc); err != nil {
		return nil, err
	}
	return &doc, nil
}

func (cl *client) action(ctx context.Context, name, verb string) (*admin.ActionResponse, error) {
	var doc admin.ActionResponse
	path := "/api/v1/services/" + url.PathEscape(name) + "/" + verb
	if err := cl.do(ctx, http.MethodPost, path, &doc); err != nil {
		return nil, err
	}
	return &doc, nil
}

func (cl *client) logs(ctx context.Context, name string, lines int) ([]admin.LogLine, error) {
	var doc admin.LogsResponse
	path := fmt.Sprintf("/api/v1/services/%s/logs?lines=%d", url.PathEscape(name), lines)
	if err := cl.do(ctx, http.MethodGet, path, &doc); err != nil {
		return nil, err
	}
	return doc.Lines, nil
}
