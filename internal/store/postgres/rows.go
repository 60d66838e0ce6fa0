package postgres

import (
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/grappe/grappe/internal/store"
	"github.com/grappe/grappe/internal/store/columns"
)

// Row encoding: times, JSON maps and documents, the same as the SQLite
// backend's, so the two read and write the same values.

// scanJob reads one row of jobColumns.
func scanJob(row rowScanner) (*store.Job, error) {
	var (
		j                          store.Job
		labels                     string
		created, started, finished int64
		lease, queued              int64
	)
	err := row.Scan(&j.Seq, &j.ID, &j.Owner, &j.Language, &j.Version, &j.Status, &j.Verdict, &j.Error,
		&j.Attempts, &j.MaxAttempts, &j.Worker, &j.Priority, &labels,
		&created, &started, &finished, &j.Request, &j.Result, &j.IdempotencyKey,
		&j.WorkerIdentity, &j.Released, &j.Master, &lease, &queued)
	if err != nil {
		return nil, err
	}
	if j.Labels, err = columns.ParseLabels(labels); err != nil {
		return nil, fmt.Errorf("job %q: %w", j.ID, err)
	}
	j.CreatedAt, j.StartedAt, j.FinishedAt = columns.Time(created), columns.Time(started), columns.Time(finished)
	j.LeaseUntil, j.QueuedAt = columns.Time(lease), columns.Time(queued)
	// An empty BYTEA scans as an empty slice; callers get nil for "no
	// document".
	if len(j.Request) == 0 {
		j.Request = nil
	}
	if len(j.Result) == 0 {
		j.Result = nil
	}
	return &j, nil
}

// scanJobs reads every row of a query of jobColumns; no row is an empty
// list, not nil.
func scanJobs(rows pgx.Rows, err error) ([]*store.Job, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	jobs := []*store.Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

// byKey reads (key, number) rows: counts by owner or status, the owners'
// last claims, held attempts by job id.
func byKey[N int | int64](rows pgx.Rows, err error) (map[string]N, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]N{}
	for rows.Next() {
		var (
			key string
			n   int64
		)
		if err := rows.Scan(&key, &n); err != nil {
			return nil, err
		}
		out[key] = N(n)
	}
	return out, rows.Err()
}

// collect reads every row of a query with scan; no row is an empty list,
// not nil. It takes the query's two results as they come.
func collect[T any](rows pgx.Rows, err error, scan func(rowScanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
