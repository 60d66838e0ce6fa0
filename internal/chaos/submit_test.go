package chaos

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
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/grappe/grappe/api"
)

// submitter submits jobs to several masters, each through an HTTP client
// of its own, with an idempotency key per job that its retries keep: a
// submission whose master is down, or answers 5xx or 429, is sent again
// to the next master, and accepted once at most. It talks HTTP itself,
// not through the SDK, so that the test chooses the master of each try
// and sees every retry.
type submitter struct {
	bases   []string // https://host:port of each master
	clients []*http.Client
	token   string
	keyBase string // the idempotency keys' prefix, unique to the run
	// giveUp bounds the retries of one submission.
	giveUp time.Duration

	mu      sync.Mutex
	retries map[string]int // why a try was retried → how often
}

func newSubmitter(c *cluster, keyBase string) (*submitter, error) {
	token, err := os.ReadFile(filepath.Join(c.masters[0].data, "admin-token"))
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(c.masters[0].data, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in %s", filepath.Join(c.masters[0].data, "ca.pem"))
	}
	s := &submitter{token: strings.TrimSpace(string(token)), keyBase: keyBase, giveUp: 3 * time.Minute, retries: map[string]int{}}
	for _, m := range c.masters {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
		s.bases = append(s.bases, "https://"+m.apiAddr)
		// A request to a master killed while it answers would otherwise
		// hang until the kernel notices; a submission answers in
		// milliseconds.
		s.clients = append(s.clients, &http.Client{Transport: tr, Timeout: 15 * time.Second})
	}
	return s, nil
}

// errRetry marks an answer worth sending again (elsewhere).
type errRetry struct {
	reason string
	err    error
}

func (e *errRetry) Error() string { return e.reason + ": " + e.err.Error() }
func (e *errRetry) Unwrap() error { return e.err }

// submit submits job i, first to master i modulo their number, and
// returns it as accepted.
func (s *submitter) submit(ctx context.Context, i int, req *api.JobRequest) (*api.Job, error) {
	key := fmt.Sprintf("%s-%d", s.keyBase, i)
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode job %d: %w", i, err)
	}
	deadline := time.Now().Add(s.giveUp)
	m := i % len(s.bases)
	for try := 1; ; try++ {
		j, err := s.post(ctx, m, key, body)
		if err == nil {
			return j, nil
		}
		var retry *errRetry
		if !errors.As(err, &retry) || ctx.Err() != nil || time.Now().After(deadline) {
			return nil, fmt.Errorf("submit job %d (key %s, try %d, master %d): %w", i, key, try, m, err)
		}
		s.mu.Lock()
		s.retries[retry.reason]++
		s.mu.Unlock()
		m = (m + 1) % len(s.bases)
		// A pause once every master was tried: all may be busy
		// restarting, or the database may be down.
		if try%len(s.bases) == 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(min(time.Duration(try)*100*time.Millisecond, 2*time.Second)):
			}
		}
	}
}

// post sends one try to master m.
func (s *submitter) post(ctx context.Context, m int, key string, body []byte) (*api.Job, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.bases[m]+"/api/v1/jobs", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Idempotency-Key", key)
	resp, err := s.clients[m].Do(req)
	if err != nil {
		return nil, &errRetry{reason: "master unreachable", err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &errRetry{reason: "answer cut", err: err}
	}
	switch {
	case resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK:
		var j api.Job
		if err := json.Unmarshal(b, &j); err != nil || j.ID == "" {
			return nil, fmt.Errorf("answer %d %q: %w", resp.StatusCode, b, err)
		}
		return &j, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, &errRetry{reason: fmt.Sprintf("answer %d", resp.StatusCode), err: fmt.Errorf("%.200s", b)}
	default:
		return nil, fmt.Errorf("answer %d: %.200s", resp.StatusCode, b)
	}
}

// retried returns how many tries were retried, in total and by reason.
func (s *submitter) retried() (int, map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, k := range s.retries {
		n += k
	}
	return n, s.retries
}
