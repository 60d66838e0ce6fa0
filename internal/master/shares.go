package master

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/store"
)

// Read-only links to a job (httpapi.Service): its owner alone makes,
// reads and revokes one; a link's token opens that job and nothing else.

// sharedPath is where the web UI shows a shared job.
const sharedPath = "/shared/"

// ownJob returns one of p's own jobs. Sharing is the owner's choice: an
// admin, who may see every job, may not publish another user's.
func (m *Master) ownJob(ctx context.Context, p *auth.Principal, id string) (*store.Job, error) {
	sj, err := m.visible(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if sj.Owner != p.User {
		return nil, &jobs.Error{Code: jobs.CodeForbidden, Message: "only the job's owner may share it"}
	}
	return sj, nil
}

// ShareJob implements httpapi.Service.
func (m *Master) ShareJob(ctx context.Context, p *auth.Principal, id string) (*api.Share, error) {
	sj, err := m.ownJob(ctx, p, id)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("share %s: random token: %w", id, err)
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	sh := store.Share{JobID: sj.ID, Hash: auth.HashToken(token), CreatedBy: p.User, CreatedAt: time.Now().UTC()}
	if err := m.store.PutShare(ctx, sh); err != nil {
		return nil, fmt.Errorf("share %s: %w", id, err)
	}
	m.log.Info("job shared", "audit", true, "job", id, "user", p.User)
	return &api.Share{Shared: true, Token: token, URL: sharedPath + token, CreatedAt: &sh.CreatedAt}, nil
}

// JobShare implements httpapi.Service: whether the job has a link, and
// since when; the token itself is not kept. A job not shared is an
// answer, not an error: the owner's page asks on every visit.
func (m *Master) JobShare(ctx context.Context, p *auth.Principal, id string) (*api.Share, error) {
	if _, err := m.ownJob(ctx, p, id); err != nil {
		return nil, err
	}
	sh, err := m.store.JobShare(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return &api.Share{}, nil
	}
	if err != nil {
		return nil, err
	}
	return &api.Share{Shared: true, CreatedAt: &sh.CreatedAt}, nil
}

// UnshareJob implements httpapi.Service.
func (m *Master) UnshareJob(ctx context.Context, p *auth.Principal, id string) error {
	if _, err := m.ownJob(ctx, p, id); err != nil {
		return err
	}
	err := m.store.DeleteShare(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return &jobs.Error{Code: jobs.CodeNotFound, Message: "the job is not shared"}
	}
	if err != nil {
		return err
	}
	m.log.Info("job share revoked", "audit", true, "job", id, "user", p.User)
	return nil
}

// SharedJob implements httpapi.Service. The job comes without what its
// owner did not choose to publish: their name, the worker it ran on,
// and its labels.
func (m *Master) SharedJob(ctx context.Context, token string) (*api.Job, error) {
	if token == "" || len(token) > 128 {
		return nil, jobs.NotFound
	}
	sh, err := m.store.ShareByHash(ctx, auth.HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil, jobs.NotFound
	}
	if err != nil {
		return nil, err
	}
	sj, err := m.store.GetJob(ctx, sh.JobID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, jobs.NotFound
	}
	if err != nil {
		return nil, err
	}
	j, err := toAPI(sj, true)
	if err != nil {
		return nil, err
	}
	j.Owner, j.Worker, j.Labels = "", "", nil
	if j.Request != nil {
		// A callback URL may carry its receiver's key.
		j.Request.Labels, j.Request.CallbackURL = nil, ""
	}
	j.Callback = nil
	return j, nil
}
