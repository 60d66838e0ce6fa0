package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/columns"
)

// tokenColumns are the columns scanToken reads, in its order.
const tokenColumns = `id, hash, user_name, name, kind, created_at, expires_at, parent`

// PutUser implements store.Store: insert, or replace every field of an
// existing user. An upsert, so the row (and the tokens that reference it)
// stays.
func (s *Store) PutUser(ctx context.Context, u *store.User) error {
	if u.Name == "" {
		return errors.New("postgres: PutUser: empty name")
	}
	_, err := s.db.Exec(ctx, `
INSERT INTO users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (name) DO UPDATE SET
	role = excluded.role,
	password_hash = excluded.password_hash,
	created_at = excluded.created_at`,
		u.Name, u.Role, u.PasswordHash, columns.Nanos(u.CreatedAt))
	if err != nil {
		return errorf("postgres: PutUser %q: %w", u.Name, err)
	}
	return nil
}

// GetUser implements store.Store.
func (s *Store) GetUser(ctx context.Context, name string) (*store.User, error) {
	u, err := scanUser(s.db.QueryRow(ctx,
		`SELECT name, role, password_hash, created_at FROM users WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("postgres: GetUser %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, errorf("postgres: GetUser %q: %w", name, err)
	}
	return u, nil
}

// ListUsers implements store.Store; users come sorted by name. (COLLATE
// "C": byte order, as SQLite sorts, whatever the database's collation.)
func (s *Store) ListUsers(ctx context.Context) ([]*store.User, error) {
	rows, err := s.db.Query(ctx,
		`SELECT name, role, password_hash, created_at FROM users ORDER BY name COLLATE "C"`)
	users, err := collect(rows, err, scanUser)
	if err != nil {
		return nil, errorf("postgres: ListUsers: %w", err)
	}
	return users, nil
}

// DeleteUser implements store.Store. The tokens go with the user through
// ON DELETE CASCADE, in the same statement.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	return s.deleteOne(ctx, "DeleteUser", name, `DELETE FROM users WHERE name = $1`)
}

// CreateToken implements store.Store. ErrConflict if the id or the hash
// exists, ErrNotFound if the user does not.
func (s *Store) CreateToken(ctx context.Context, t *store.Token) error {
	if t.ID == "" || t.Hash == "" {
		return errors.New("postgres: CreateToken: empty id or hash")
	}
	kind := t.Kind
	if kind == "" {
		kind = store.TokenAPI
	}
	_, err := s.db.Exec(ctx,
		`INSERT INTO tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		t.ID, t.Hash, t.User, t.Name, kind, columns.Nanos(t.CreatedAt), columns.Nanos(t.ExpiresAt), t.Parent)
	if err != nil {
		return errorf("postgres: CreateToken %q for user %q: %w", t.ID, t.User, constraintErr(err))
	}
	return nil
}

// TokenByHash implements store.Store.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*store.Token, error) {
	t, err := scanToken(s.db.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		// The hash is a credential's digest: keep it out of the message.
		return nil, errorf("postgres: TokenByHash: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, errorf("postgres: TokenByHash: %w", err)
	}
	return t, nil
}

// ListTokens implements store.Store: the user's tokens, oldest first; none
// (not an error) for an unknown user.
func (s *Store) ListTokens(ctx context.Context, user string) ([]*store.Token, error) {
	rows, err := s.db.Query(ctx,
		`SELECT `+tokenColumns+` FROM tokens WHERE user_name = $1 ORDER BY created_at, id COLLATE "C"`, user)
	tokens, err := collect(rows, err, scanToken)
	if err != nil {
		return nil, errorf("postgres: ListTokens %q: %w", user, err)
	}
	return tokens, nil
}

// DeleteToken implements store.Store: the token and the sessions opened
// with it, in one statement.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	return s.deleteOne(ctx, "DeleteToken", id, `DELETE FROM tokens WHERE id = $1 OR (parent = $1 AND $1 <> '')`)
}

// SetPasswordHash implements store.Store: the new hash and the deletion of
// the user's login tokens commit together, so a crash cannot leave the new
// password in place with the old sessions still valid.
func (s *Store) SetPasswordHash(ctx context.Context, name, hash string) (int, error) {
	var revoked int64
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $1 WHERE name = $2`, hash, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		tag, err = tx.Exec(ctx, `DELETE FROM tokens WHERE user_name = $1 AND kind = $2`, name, store.TokenLogin)
		if err != nil {
			return fmt.Errorf("revoke login tokens: %w", err)
		}
		revoked = tag.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, errorf("postgres: SetPasswordHash %q: %w", name, err)
	}
	return int(revoked), nil
}

// DeleteExpiredTokens implements store.Store.
func (s *Store) DeleteExpiredTokens(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM tokens WHERE expires_at <> 0 AND expires_at <= $1`, columns.Nanos(now))
	if err != nil {
		return 0, errorf("postgres: DeleteExpiredTokens: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// deleteOne runs a DELETE by key; no row deleted is ErrNotFound.
func (s *Store) deleteOne(ctx context.Context, op, key, query string) error {
	tag, err := s.db.Exec(ctx, query, key)
	if err != nil {
		return errorf("postgres: %s %q: %w", op, key, err)
	}
	if tag.RowsAffected() == 0 {
		return errorf("postgres: %s %q: %w", op, key, store.ErrNotFound)
	}
	return nil
}

func scanUser(row rowScanner) (*store.User, error) {
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

func scanToken(row rowScanner) (*store.Token, error) {
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
