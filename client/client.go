// Package client is the Go SDK of grappe's REST API: submit programs, wait
// for their results, follow their events, list workers and languages, and
// administer users. The grappe command line is built on it.
//
//	c, err := client.New(client.Config{Addr: "https://master:7443", Token: tok, CAFile: "ca.pem"})
//	job, err := c.SubmitWait(ctx, &api.JobRequest{Language: "python", Source: "print(1)"}, time.Minute)
//
// Every method takes a context; none retries a request that could have
// changed something on the master, except Wait, which only reads and rides
// through connection errors and master restarts until its context ends.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/grappe/grappe/api"
)

// Config says how to reach a master.
type Config struct {
	// Addr is the master's base URL, https://host:port. A bare host:port
	// means https. Several, comma-separated (masters sharing a database),
	// are tried in turn: a request that cannot reach one goes to the next.
	Addr string
	// Token is the API token sent as "Authorization: Bearer"; empty sends none.
	Token string
	// CAFile is a PEM file of the CA to trust instead of the system roots
	// (the master's DIR/ca.pem). CAPEM, when set, is used instead of CAFile.
	CAFile string
	CAPEM  []byte
	// HTTPClient, when set, is used as is (and CAFile, CAPEM ignored).
	HTTPClient *http.Client
	// UserAgent defaults to "grappe-client".
	UserAgent string
}

// Client talks to a master (one of several). It is safe for concurrent
// use.
type Client struct {
	bases []*url.URL
	cur   atomic.Int32 // the base in use
	token string
	hc    *http.Client
	ua    string
}

// ErrNoAddr is returned by New when Config.Addr is empty.
var ErrNoAddr = errors.New("no master address: use --addr, GRAPPE_ADDR or grappe login")

// New returns a client for cfg. It does not contact the master.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.Addr) == "" {
		return nil, ErrNoAddr
	}
	var bases []*url.URL
	for _, a := range strings.Split(cfg.Addr, ",") {
		if strings.TrimSpace(a) == "" {
			continue
		}
		base, err := ParseAddr(a)
		if err != nil {
			return nil, err
		}
		bases = append(bases, base)
	}
	var err error
	hc := cfg.HTTPClient
	if hc == nil {
		tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
		caPEM := cfg.CAPEM
		if len(caPEM) == 0 && cfg.CAFile != "" {
			if caPEM, err = os.ReadFile(cfg.CAFile); err != nil {
				return nil, fmt.Errorf("read CA: %w", err)
			}
		}
		if len(caPEM) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(caPEM) {
				return nil, fmt.Errorf("no PEM certificate in the CA %s", orDefault(cfg.CAFile, "given"))
			}
			tlsCfg.RootCAs = pool
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tlsCfg
		// Keep connections for bursts of concurrent requests (grappe bench,
		// a judge submitting in parallel) instead of re-handshaking TLS.
		tr.MaxIdleConnsPerHost = 64
		// No overall timeout: ?wait=true and event streams are long by design;
		// callers bound requests with their context.
		hc = &http.Client{Transport: tr}
	}
	return &Client{
		bases: bases,
		token: strings.TrimSpace(cfg.Token),
		hc:    hc,
		ua:    orDefault(cfg.UserAgent, "grappe-client"),
	}, nil
}

// ParseAddr parses a master address: a URL with scheme https or http, or a
// bare host:port taken as https. A trailing slash is dropped.
func ParseAddr(addr string) (*url.URL, error) {
	addr = strings.TrimSpace(addr)
	if !strings.Contains(addr, "://") {
		addr = "https://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("master address: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("master address %q: scheme must be https", addr)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("master address %q has no host", addr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// Addr returns the base URL of the master in use.
func (c *Client) Addr() string { return c.base().String() }

func (c *Client) base() *url.URL { return c.bases[int(c.cur.Load())%len(c.bases)] }

// failedOver moves to the next master after a request to the one in use
// (base) could not reach it, and reports whether there is another to try.
// Concurrent requests that failed on the same master move once.
func (c *Client) failedOver(used *url.URL) bool {
	if len(c.bases) < 2 {
		return false
	}
	n := c.cur.Load()
	if c.bases[int(n)%len(c.bases)] == used {
		c.cur.CompareAndSwap(n, n+1)
	}
	return true
}

// Close closes idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Error is a 4xx or 5xx answer of the master.
type Error struct {
	Status  int    // HTTP status
	Code    string // api.Code…, e.g. "not_found"
	Message string
	// RetryAfter is how long the master asked to wait before trying
	// again (its Retry-After header, on a 429 or 503), or 0.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%d %s", e.Status, e.Code)
	}
	return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code)
}

// StatusCode returns the HTTP status of an *Error in err's chain, or 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// IsNotFound reports whether err is a 404 answer (no such job, user…).
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// IsUnauthorized reports whether err is a 401 answer (missing or bad token).
func IsUnauthorized(err error) bool { return StatusCode(err) == http.StatusUnauthorized }

// IsForbidden reports whether err is a 403 answer (not allowed to the caller).
func IsForbidden(err error) bool { return StatusCode(err) == http.StatusForbidden }

// IsConflict reports whether err is a 409 answer (e.g. cancelling a finished job).
func IsConflict(err error) bool { return StatusCode(err) == http.StatusConflict }

// IsRateLimited reports whether err is a 429 answer.
func IsRateLimited(err error) bool { return StatusCode(err) == http.StatusTooManyRequests }

// IsUnavailable reports whether err is a 503 answer.
func IsUnavailable(err error) bool { return StatusCode(err) == http.StatusServiceUnavailable }

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// decodeError turns a non-2xx answer into an *Error, also when its body is
// not the API's JSON (a proxy's HTML page, an empty body).
func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var body api.ErrorBody
	if json.Unmarshal(b, &body) == nil && (body.Error.Code != "" || body.Error.Message != "") {
		e.Code, e.Message = body.Error.Code, body.Error.Message
		return e
	}
	e.Code = codeForStatus(resp.StatusCode)
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	e.Message = orDefault(msg, http.StatusText(resp.StatusCode))
	return e
}

// retryAfter reads a Retry-After header: a number of seconds, or an HTTP
// date (then the time left until it). 0 when absent, unreadable or past.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return api.CodeBadRequest
	case http.StatusUnauthorized:
		return api.CodeUnauthorized
	case http.StatusForbidden:
		return api.CodeForbidden
	case http.StatusNotFound:
		return api.CodeNotFound
	case http.StatusConflict:
		return api.CodeConflict
	case http.StatusRequestEntityTooLarge:
		return api.CodeTooLarge
	case http.StatusUnprocessableEntity:
		return api.CodeInvalid
	case http.StatusTooManyRequests:
		return api.CodeRateLimited
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return api.CodeUnavailable
	}
	return api.CodeInternal
}

// newRequest builds a request to path (below the base URL) with query q and,
// when in is not nil, a JSON body.
func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, in any) (*http.Request, error) {
	// path is already escaped (callers PathEscape the ids they insert).
	u := c.base().String() + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// optional marks an answer whose body may be empty (204, or a server that
// answers a cancel without the job).
type optional struct {
	v       any
	present bool
}

// do sends a request and decodes a 2xx JSON answer into out (nil: discard).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	return c.doWith(ctx, method, path, q, nil, in, out)
}

// doWith is do with extra request headers.
func (c *Client) doWith(ctx context.Context, method, path string, q url.Values, hdr http.Header, in, out any) error {
	resp, err := c.send(ctx, method, path, q, hdr, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if opt, ok := out.(*optional); ok {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return fmt.Errorf("%s %s: read answer: %w", method, path, err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return nil
		}
		if err := json.Unmarshal(b, opt.v); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
		opt.present = true
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// send sends a request to the master in use, and to the next ones in turn
// when it cannot reach one. A request that may have reached a master is
// safe to send again: submissions carry an idempotency key, and the
// other calls are reads or idempotent.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, hdr http.Header, in any) (*http.Response, error) {
	var errs []error
	for range c.bases {
		used := c.base()
		req, err := c.newRequest(ctx, method, path, q, in)
		if err != nil {
			return nil, err
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := c.hc.Do(req)
		if err == nil {
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("%s %s%s: %w", method, used.Host, path, err))
		if ctx.Err() != nil || !c.failedOver(used) {
			break
		}
	}
	if len(errs) == 1 {
		return nil, fmt.Errorf("%s %s: %w", method, path, errors.Unwrap(errs[0]))
	}
	return nil, errors.Join(errs...)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
