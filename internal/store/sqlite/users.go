package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/columns"
)

// tokenColumns are the columns scanToken reads, in its order.
const tokenColumns = `id, hash, user, name, kind, created_at, expires_at, parent`

const sqlTokenByHash = `SELECT ` + tokenColumns + ` FROM tokens WHERE hash = ?`

// PutUser implements store.Store: insert, or replace every field of an
// existing user.
//
// It is an UPSERT on purpose, not INSERT OR REPLACE: REPLACE deletes the old
// row before inserting, and with foreign keys on that delete cascades, so
// changing a password would silently revoke all the user's API tokens.
func (s *Store) PutUser(ctx context.Context, u *store.User) error {
	if u.Name == "" {
		return errors.New("sqlite: PutUser: empty name")
	}
	_, err := s.w.ExecContext(ctx, `
INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
	role = excluded.role,
	password_hash = excluded.password_hash,
	created_at = excluded.created_at`,
		u.Name, u.Role, u.PasswordHash, columns.Nanos(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: PutUser %q: %w", u.Name, err)
	}
	return nil
}

// GetUser implements store.Store.
func (s *Store) GetUser(ctx context.Context, name string) (*store.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx,
		`SELECT name, role, password_hash, created_at FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: GetUser %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: GetUser %q: %w", name, err)
	}
	return u, nil
}

// ListUsers implements store.Store; users come sorted by name.
func (s *Store) ListUsers(ctx context.Context) ([]*store.User, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT name, role, password_hash, created_at FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: ListUsers: %w", err)
	}
	defer rows.Close()
	users := []*store.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: ListUsers: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: ListUsers: %w", err)
	}
	return users, nil
}

// DeleteUser implements store.Store. The tokens go with the user through
// ON DELETE CASCADE, in the same statement, so no token outlives its user
// even across a crash.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	return s.deleteOne(ctx, "DeleteUser", name, `DELETE FROM users WHERE name = ?`)
}

// CreateToken implements store.Store. ErrConflict if the id or the hash
// exists, ErrNotFound if the user does not.
func (s *Store) CreateToken(ctx context.Context, t *store.Token) error {
	if t.ID == "" || t.Hash == "" {
		return errors.New("sqlite: CreateToken: empty id or hash")
	}
	kind := t.Kind
	if kind == "" {
		kind = store.TokenAPI
	}
	_, err := s.w.ExecContext(ctx,
		`INSERT INTO tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Hash, t.User, t.Name, kind, columns.Nanos(t.CreatedAt), columns.Nanos(t.ExpiresAt), t.Parent)
	if err != nil {
		return fmt.Errorf("sqlite: CreateToken %q for user %q: %w", t.ID, t.User, constraintErr(err))
	}
	return nil
}

// TokenByHash implements store.Store.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*store.Token, error) {
	t, err := scanToken(s.tokenByHash.QueryRowContext(ctx, hash))
	if errors.Is(err, sql.ErrNoRows) {
		// The hash is a credential's digest: keep it out of the message.
		return nil, fmt.Errorf("sqlite: TokenByHash: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: TokenByHash: %w", err)
	}
	return t, nil
}

// ListTokens implements store.Store: the user's tokens, oldest first; none
// (not an error) for an unknown user.
func (s *Store) ListTokens(ctx context.Context, user string) ([]*store.Token, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT `+tokenColumns+` FROM tokens WHERE user = ? ORDER BY created_at, id`, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: ListTokens %q: %w", user, err)
	}
	defer rows.Close()
	tokens := []*store.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: ListTokens %q: %w", user, err)
		}
		tokens = append(tokens, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: ListTokens %q: %w", user, err)
	}
	return tokens, nil
}

// DeleteToken implements store.Store: the token and the sessions opened
// with it, in one statement.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	return s.deleteOne(ctx, "DeleteToken", id, `DELETE FROM tokens WHERE id = ?1 OR (parent = ?1 AND ?1 <> '')`)
}

// SetPasswordHash implements store.Store: the new hash and the deletion of
// the user's login tokens commit together, so a crash cannot leave the new
// password in place with the old sessions still valid.
func (s *Store) SetPasswordHash(ctx context.Context, name, hash string) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: SetPasswordHash %q: %w", name, err)
	}
	defer tx.Rollback() // no-op after Commit
	res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE name = ?`, hash, name)
	if err != nil {
		return 0, fmt.Errorf("sqlite: SetPasswordHash %q: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, fmt.Errorf("sqlite: SetPasswordHash %q: %w", name, err)
	} else if n == 0 {
		return 0, fmt.Errorf("sqlite: SetPasswordHash %q: %w", name, store.ErrNotFound)
	}
	res, err = tx.ExecContext(ctx, `DELETE FROM tokens WHERE user = ? AND kind = ?`, name, store.TokenLogin)
	if err != nil {
		return 0, fmt.Errorf("sqlite: SetPasswordHash %q: revoke login tokens: %w", name, err)
	}
	revoked, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: SetPasswordHash %q: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: SetPasswordHash %q: %w", name, err)
	}
	return int(revoked), nil
}

// DeleteExpiredTokens implements store.Store.
func (s *Store) DeleteExpiredTokens(ctx context.Context, now time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM tokens WHERE expires_at != 0 AND expires_at <= ?`, columns.Nanos(now))
	if err != nil {
		return 0, fmt.Errorf("sqlite: DeleteExpiredTokens: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: DeleteExpiredTokens: %w", err)
	}
	return int(n), nil
}

// deleteOne runs a DELETE by key; no row deleted is ErrNotFound.
func (s *Store) deleteOne(ctx context.Context, op, key, query string) error {
	res, err := s.w.ExecContext(ctx, query, key)
	if err != nil {
		return fmt.Errorf("sqlite: %s %q: %w", op, key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: %s %q: %w", op, key, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: %s %q: %w", op, key, store.ErrNotFound)
	}
	return nil
}

func scanUser(row interface{ Scan(...any) error }) (*store.User, error) {
	var (
		u       store.User
		created int64
	)
	if err := row.Scan(&u.Name, &u.Role, &u.PasswordHash, &created); err != nil {
		return nil, err
	}
	u.CreatedAt = columns.Time(created)
	return &u, nil
}

func scanToken(row interface{ Scan(...any) error }) (*store.Token, error) {
	var (
		t                store.Token
		created, expires int64
	)
	if err := row.Scan(&t.ID, &t.Hash, &t.User, &t.Name, &t.Kind, &created, &expires, &t.Parent); err != nil {
		return nil, err
	}
	t.CreatedAt = columns.Time(created)
	t.ExpiresAt = columns.Time(expires)
	return &t, nil
}
