package client

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/grappe/grappe/api"
)

// SubmitBatch submits jobs all or none and returns the batch with its job
// ids. Like Submit it carries an idempotency key, so that it is retried
// (through a master restart, on the next master) without making a second
// batch.
func (c *Client) SubmitBatch(ctx context.Context, req *api.BatchRequest) (*api.Batch, error) {
	hdr := http.Header{"Idempotency-Key": {newIdempotencyKey()}}
	for n := 1; ; n++ {
		var b api.Batch
		err := c.doWith(ctx, http.MethodPost, "/api/v1/batches", nil, hdr, req, &b)
		if err == nil {
			return &b, nil
		}
		if !retryable(err) || ctx.Err() != nil || n >= submitTries {
			return nil, err
		}
		if serr := sleep(ctx, retryPause(err, n)); serr != nil {
			return nil, err
		}
	}
}

// Batch returns a batch with each job's status and the totals.
func (c *Client) Batch(ctx context.Context, id string) (*api.Batch, error) {
	var b api.Batch
	if err := c.do(ctx, http.MethodGet, "/api/v1/batches/"+url.PathEscape(id), nil, nil, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// CancelBatch cancels every job of a batch that is not finished yet and
// returns the batch.
func (c *Client) CancelBatch(ctx context.Context, id string) (*api.Batch, error) {
	var b api.Batch
	if err := c.do(ctx, http.MethodPost, "/api/v1/batches/"+url.PathEscape(id)+"/cancel", nil, nil, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// CallbackSecret returns the caller's callback secret, the key of the
// signatures of its callbacks (made at the first call).
func (c *Client) CallbackSecret(ctx context.Context) (string, error) {
	var s api.CallbackSecret
	if err := c.do(ctx, http.MethodGet, "/api/v1/callback-secret", nil, nil, &s); err != nil {
		return "", err
	}
	return s.Secret, nil
}

// RotateCallbackSecret replaces the caller's callback secret and returns
// the new one; callbacks sent from then on are signed with it.
func (c *Client) RotateCallbackSecret(ctx context.Context) (string, error) {
	var s api.CallbackSecret
	if err := c.do(ctx, http.MethodPost, "/api/v1/callback-secret/rotate", nil, nil, &s); err != nil {
		return "", err
	}
	return s.Secret, nil
}

// ErrBadSignature is VerifyCallback's refusal.
var ErrBadSignature = errors.New("grappe callback: bad signature")

// DefaultCallbackTolerance is how old a signed callback VerifyCallback
// accepts by default.
const DefaultCallbackTolerance = 5 * time.Minute

// VerifyCallback checks the Grappe-Signature header of a callback
// received with body: its HMAC-SHA256 under secret, and that it was
// signed within tolerance of now (DefaultCallbackTolerance if 0), so that
// a delivery replayed later is refused. body must be the raw bytes
// received, before any decoding.
func VerifyCallback(secret, header string, body []byte, tolerance time.Duration, now time.Time) error {
	if tolerance == 0 {
		tolerance = DefaultCallbackTolerance
	}
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errors.Join(ErrBadSignature, errors.New("the header has no t= or no v1="))
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.Join(ErrBadSignature, errors.New("signed outside the tolerance"))
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range sigs {
		if got, err := hex.DecodeString(s); err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrBadSignature
}
