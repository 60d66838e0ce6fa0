package clustertest_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
)

// fatalRecorder is a testing.TB whose Fatal records the message and stops
// the goroutine, as the real one does, without failing the outer test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatal(args ...any) {
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fails runs check against a recorder in its own goroutine and returns
// what it failed with ("" if it did not), so that a panic would fail this
// test instead of being reported as a failure of the check.
func fails(t *testing.T, check func(tb testing.TB)) string {
	t.Helper()
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r)
	}()
	<-done
	return r.msg
}

func TestChecksFailInsteadOfPanicking(t *testing.T) {
	finished := &api.Job{ID: "j1", Status: api.StatusDone, Verdict: api.VerdictOK, Run: &api.Run{Stdout: "hi\n"}}
	failed := &api.Job{ID: "j2", Status: api.StatusFailed, Error: "no worker runs c", Attempts: 3}
	for _, tc := range []struct {
		name  string
		check func(tb testing.TB)
		want  string // in the failure; "" for none
	}{
		{"an error", func(tb testing.TB) { clustertest.Must(tb).Finished(nil, errors.New("connection refused")) }, "connection refused"},
		{"no job and no error", func(tb testing.TB) { clustertest.Must(tb).Finished(nil, nil) }, "no job"},
		{"a running job", func(tb testing.TB) {
			clustertest.Must(tb).Finished(&api.Job{ID: "j3", Status: api.StatusRunning}, nil)
		}, "still running"},
		{"a finished job", func(tb testing.TB) { clustertest.Must(tb).Finished(finished, nil) }, ""},
		{"the run of a failed job", func(tb testing.TB) { _ = clustertest.RunOf(tb, failed).Stdout }, "no worker runs c"},
		{"the run of no job", func(tb testing.TB) { _ = clustertest.RunOf(tb, nil).Stdout }, "no job"},
		{"the run of a job that ran", func(tb testing.TB) {
			if got := clustertest.RunOf(tb, finished).Stdout; got != "hi\n" {
				tb.Fatalf("stdout %q", got)
			}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := fails(t, tc.check)
			switch {
			case tc.want == "" && msg != "":
				t.Fatalf("failed with %q, want no failure", msg)
			case tc.want != "" && !strings.Contains(msg, tc.want):
				t.Fatalf("failed with %q, want a failure mentioning %q", msg, tc.want)
			}
		})
	}
}
