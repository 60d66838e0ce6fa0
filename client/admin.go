package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/grappe/grappe/api"
)

// Health checks GET /healthz: nil once the master serves.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
}

// Login exchanges a user name and password for an API token.
func (c *Client) Login(ctx context.Context, user, password string) (string, error) {
	var out api.LoginResponse
	in := api.LoginRequest{Username: user, Password: password}
	if err := c.do(ctx, http.MethodPost, "/api/v1/login", nil, in, &out); err != nil {
		return "", err
	}
	if out.Token == "" {
		return "", errors.New("the master answered the login without a token")
	}
	return out.Token, nil
}

// Languages lists the languages the connected workers can run.
func (c *Client) Languages(ctx context.Context) ([]api.Language, error) {
	var out api.LanguageList
	if err := c.do(ctx, http.MethodGet, "/api/v1/languages", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Languages, nil
}

// Workers lists the workers (admin only).
func (c *Client) Workers(ctx context.Context) ([]api.Worker, error) {
	var out api.WorkerList
	if err := c.do(ctx, http.MethodGet, "/api/v1/workers", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Workers, nil
}

// Cluster returns the cluster's counters.
func (c *Client) Cluster(ctx context.Context) (*api.Cluster, error) {
	var out api.Cluster
	if err := c.do(ctx, http.MethodGet, "/api/v1/cluster", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Autoscaler returns the autoscaler's policy, desired and actual workers,
// the workers it started and its recent decisions (admin only). Enabled is
// false when the master runs without one.
func (c *Client) Autoscaler(ctx context.Context) (*api.Autoscaler, error) {
	var out api.Autoscaler
	if err := c.do(ctx, http.MethodGet, "/api/v1/autoscaler", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Clients lists the API clients seen recently, with their jobs (admin
// only).
func (c *Client) Clients(ctx context.Context) ([]api.Client, error) {
	var out api.ClientList
	if err := c.do(ctx, http.MethodGet, "/api/v1/clients", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Clients, nil
}

// Stats returns the cluster's last minutes in fixed intervals, oldest
// first: jobs submitted and completed, queue depth, running jobs, queue
// wait.
func (c *Client) Stats(ctx context.Context) (*api.Stats, error) {
	var out api.Stats
	if err := c.do(ctx, http.MethodGet, "/api/v1/stats", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AddUser creates a user (admin only); role is api.RoleUser or
// api.RoleAdmin, empty meaning api.RoleUser.
func (c *Client) AddUser(ctx context.Context, name, password, role string) error {
	in := api.UserRequest{Username: name, Password: password, Role: role}
	return c.do(ctx, http.MethodPost, "/api/v1/users", nil, in, nil)
}

// Users lists the users (admin only).
func (c *Client) Users(ctx context.Context) ([]api.User, error) {
	var out api.UserList
	if err := c.do(ctx, http.MethodGet, "/api/v1/users", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Users, nil
}

// RemoveUser removes a user and their tokens (admin only).
func (c *Client) RemoveUser(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/users/"+url.PathEscape(name), nil, nil, nil)
}

// SetPassword sets a user's password (PUT /api/v1/users/{name}/password):
// an admin may set anyone's, a user their own.
func (c *Client) SetPassword(ctx context.Context, name, password string) error {
	in := api.PasswordRequest{Password: password}
	return c.do(ctx, http.MethodPut, "/api/v1/users/"+url.PathEscape(name)+"/password", nil, in, nil)
}

// Drain stops the master from placing new jobs on a worker (admin); its
// running jobs finish. Undrain reverses it.
func (c *Client) Drain(ctx context.Context, name string) (*api.Worker, error) {
	return c.setDrain(ctx, name, "drain")
}

// Undrain lets the master place jobs on a drained worker again (admin).
func (c *Client) Undrain(ctx context.Context, name string) (*api.Worker, error) {
	return c.setDrain(ctx, name, "undrain")
}

func (c *Client) setDrain(ctx context.Context, name, action string) (*api.Worker, error) {
	var w api.Worker
	if err := c.do(ctx, http.MethodPost, "/api/v1/workers/"+url.PathEscape(name)+"/"+action, nil, nil, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// RevokeWorker revokes a worker's certificate and disconnects it (admin).
func (c *Client) RevokeWorker(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/workers/"+url.PathEscape(name)+"/revoke", nil, nil, nil)
}

// WorkerIdentities lists the worker certificates the master issued (admin).
func (c *Client) WorkerIdentities(ctx context.Context) ([]api.WorkerIdentity, error) {
	var out api.WorkerIdentityList
	if err := c.do(ctx, http.MethodGet, "/api/v1/worker-identities", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Identities, nil
}

// RotateJoinToken replaces the cluster's join token and returns the new
// one (admin). Workers already joined keep working.
func (c *Client) RotateJoinToken(ctx context.Context) (string, error) {
	var out api.JoinToken
	if err := c.do(ctx, http.MethodPost, "/api/v1/join-token/rotate", nil, nil, &out); err != nil {
		return "", err
	}
	return out.JoinToken, nil
}

// CreateToken makes a named API token for the caller; the secret is in the
// answer only.
func (c *Client) CreateToken(ctx context.Context, name string) (*api.APIToken, error) {
	return c.CreateTokenExpiring(ctx, name, time.Time{})
}

// CreateTokenExpiring makes a named API token for the caller that stops
// being valid at expires (zero: never).
func (c *Client) CreateTokenExpiring(ctx context.Context, name string, expires time.Time) (*api.APIToken, error) {
	in := api.TokenRequest{Name: name}
	if !expires.IsZero() {
		in.ExpiresAt = &expires
	}
	var out api.APIToken
	if err := c.do(ctx, http.MethodPost, "/api/v1/tokens", nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Tokens lists the caller's API tokens (without secrets).
func (c *Client) Tokens(ctx context.Context) ([]api.APIToken, error) {
	var out api.APITokenList
	if err := c.do(ctx, http.MethodGet, "/api/v1/tokens", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Tokens, nil
}

// RevokeToken deletes one of the caller's API tokens by id.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(id), nil, nil, nil)
}
