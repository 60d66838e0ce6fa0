// Package columns encodes the values grappe's SQL backends (sqlite,
// postgres) store the same way, so that both read and write identical
// columns: times as UTC unix nanoseconds (0 for unset), labels as a JSON
// object, blobs never NULL.
package columns

import (
	"encoding/json"
	"fmt"
	"time"
)

// Nanos encodes a time as UTC unix nanoseconds, the zero time as 0. (The
// zero time.Time is year 1, outside int64 nanoseconds, so it needs the
// special case; in exchange the instant 1970-01-01T00:00:00Z reads back
// as zero, which no record can have.)
func Nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Time decodes Nanos: 0 is the zero time, anything else a UTC time.
func Time(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Blob keeps NOT NULL blob columns non-NULL: a nil slice binds as NULL.
func Blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Labels encodes labels as a JSON object, keys sorted, so that equal maps
// are equal bytes; none is "{}".
func Labels(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("labels: %w", err)
	}
	return string(b), nil
}

// ParseLabels decodes Labels; none is a nil map.
func ParseLabels(s string) (map[string]string, error) {
	if s == "" || s == "{}" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}
