package judge0

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/store"
)

// fakeBackend serves a fixed cluster: alice's 62 jobs, two workers.
type fakeBackend struct {
	jobs    []api.Job // alice's, newest first
	tallies atomic.Int32
	tally   *store.Tally
}

var _ Backend = (*fakeBackend)(nil)

func (f *fakeBackend) Authenticate(r *http.Request) (*auth.Principal, error) {
	return &auth.Principal{User: "alice", Role: auth.RoleUser}, nil
}
func (f *fakeBackend) Submit(context.Context, *auth.Principal, *api.JobRequest) (*api.Job, error) {
	return nil, fmt.Errorf("not in this test")
}
func (f *fakeBackend) SubmitBatch(context.Context, *auth.Principal, []Submission) ([]string, error) {
	return nil, fmt.Errorf("not in this test")
}
func (f *fakeBackend) Wait(context.Context, *auth.Principal, string, time.Duration) (*api.Job, error) {
	return nil, fmt.Errorf("not in this test")
}
func (f *fakeBackend) Job(context.Context, *auth.Principal, string) (*api.Job, error) {
	return nil, fmt.Errorf("not in this test")
}
func (f *fakeBackend) Languages(context.Context) []api.Language {
	return []api.Language{{Name: "c", Version: "12.2.0"}, {Name: "python", Version: "3.11.2"}}
}
func (f *fakeBackend) OwnJobs(_ context.Context, _ *auth.Principal, offset, limit int) ([]api.Job, int, error) {
	if offset >= len(f.jobs) {
		return nil, len(f.jobs), nil
	}
	return f.jobs[offset:min(offset+limit, len(f.jobs))], len(f.jobs), nil
}
func (f *fakeBackend) Workers(context.Context) []api.Worker {
	py := []api.WorkerLanguage{{Name: "python", Version: "3.11.2"}}
	return []api.Worker{
		{Name: "w1", Status: api.WorkerUp, Slots: 2, Running: 1, Languages: append(py, api.WorkerLanguage{Name: "c", Version: "12.2.0"})},
		{Name: "w2", Status: api.WorkerUp, Slots: 4, Languages: py},
		{Name: "w3", Status: api.WorkerDraining, Slots: 1, Languages: py},
		{Name: "w4", Status: api.WorkerLost, Slots: 8, Languages: py},
	}
}
func (f *fakeBackend) QueuedByLanguage(context.Context) (map[string]int, error) {
	return map[string]int{"python": 7, "java": 2}, nil
}
func (f *fakeBackend) TallyJobs(_ context.Context, since time.Time) (*store.Tally, error) {
	f.tallies.Add(1)
	return f.tally, nil
}

func newFake(t *testing.T) (*fakeBackend, http.Handler) {
	f := &fakeBackend{}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := 62; i >= 1; i-- {
		f.jobs = append(f.jobs, api.Job{ID: fmt.Sprintf("job-%02d", i), Owner: "alice", Language: "c", Version: "12.2.0",
			Status: api.StatusDone, Verdict: api.VerdictOK, CreatedAt: start, StartedAt: &start, FinishedAt: &start,
			Run:     &api.Run{Stdout: fmt.Sprintf("hello %d\n", i), CPUMs: 1, WallMs: 2, MemoryKB: 376},
			Request: &api.JobRequest{Language: "c", Source: "int main(){}"}})
	}
	return f, New(Config{Backend: f, Logger: slog.New(slog.DiscardHandler)})
}

func get(t *testing.T, h http.Handler, method, target string, wantStatus int, into any) {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("X-Auth-Token", "a token the fake takes")
	h.ServeHTTP(w, r)
	body, _ := io.ReadAll(w.Result().Body)
	if w.Code != wantStatus {
		t.Fatalf("%s %s: %d, want %d: %s", method, target, w.Code, wantStatus, body)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q", method, target, ct)
	}
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("%s %s: %v: %s", method, target, err, body)
		}
	}
}

// GET /submissions, with the fixtures of Judge0's documentation
// (docs/api/submissions/get_submissions.md): page 4 of 2 per page out of
// 62, and its 400s.
func TestListSubmissions(t *testing.T) {
	_, h := newFake(t)
	var got struct {
		Submissions []map[string]any `json:"submissions"`
		Meta        map[string]any   `json:"meta"`
	}
	get(t, h, "GET", "/submissions?page=4&per_page=2&fields=status,language,time", 200, &got)
	wantMeta := map[string]any{"current_page": 4.0, "next_page": 5.0, "prev_page": 3.0, "total_pages": 31.0, "total_count": 62.0}
	if !reflect.DeepEqual(got.Meta, wantMeta) {
		t.Errorf("meta %v, want %v", got.Meta, wantMeta)
	}
	want := map[string]any{"time": "0.001", "status": map[string]any{"id": 3.0, "description": "Accepted"},
		"language": map[string]any{"id": 50.0, "name": "C (GCC 12.2.0)"}}
	if len(got.Submissions) != 2 || !reflect.DeepEqual(got.Submissions[0], want) {
		t.Errorf("submissions %v, want two of %v", got.Submissions, want)
	}

	// The defaults: page 1, 20 per page, the default fields; base64.
	got.Submissions, got.Meta = nil, nil
	get(t, h, "GET", "/submissions?base64_encoded=true", 200, &got)
	if len(got.Submissions) != 20 || got.Meta["prev_page"] != nil || got.Meta["next_page"] != 2.0 || got.Meta["total_pages"] != 4.0 {
		t.Errorf("first page: %d submissions, meta %v", len(got.Submissions), got.Meta)
	}
	s := got.Submissions[0]
	if s["token"] != "job-62" || s["stdout"] != "aGVsbG8gNjIK\n" || s["memory"] != 376.0 || len(s) != len(defaultFields) {
		t.Errorf("first submission %v", s)
	}
	// Past the last page: empty, as will_paginate answers.
	get(t, h, "GET", "/submissions?page=99999999999999999999", 200, &got)
	if len(got.Submissions) != 0 || got.Meta["next_page"] != nil || got.Meta["total_count"] != 62.0 {
		t.Errorf("far page: %v %v", got.Submissions, got.Meta)
	}

	for _, tc := range []struct{ query, err string }{
		{"page=-4", "invalid page: -4"},
		{"page=0", "invalid page: 0"},
		{"page=abc", "invalid page: 0"}, // Ruby's "abc".to_i
		{"per_page=-2", "invalid per_page: -2"},
		{"per_page=0", "invalid per_page: 0"},
		{"per_page=1001", "invalid per_page: 1001 (at most 1000)"},
		{"fields=stdout,bogus", "invalid fields: [bogus]"},
	} {
		var e map[string]string
		get(t, h, "GET", "/submissions?"+tc.query, 400, &e)
		if e["error"] != tc.err {
			t.Errorf("%s: %v, want %q", tc.query, e, tc.err)
		}
	}
}

// Without a token, the caller is the operator's anonymous user, whose
// submissions are everyone's: listing and deleting are refused (Judge0's
// 403 where they need X-Auth-User).
func TestListNeedsToken(t *testing.T) {
	_, h := newFake(t)
	for _, method := range []string{"GET", "DELETE"} {
		target := "/submissions"
		if method == "DELETE" {
			target += "/job-01"
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "needs a token") {
			t.Errorf("%s %s without a token: %d %s", method, target, w.Code, w.Body)
		}
	}
}

func TestRubyInt(t *testing.T) {
	for in, want := range map[string]int{"4": 4, " 12x": 12, "-3": -3, "+7": 7, "": 0, "abc": 0, "2.9": 2} {
		if got := rubyInt(in); got != want {
			t.Errorf("rubyInt(%q) = %d, want %d", in, got, want)
		}
	}
}

// DELETE /submissions/{token}: Judge0's answer where deletion is off
// (SubmissionsController#destroy), which /config_info says.
func TestDeleteSubmission(t *testing.T) {
	_, h := newFake(t)
	var e map[string]string
	get(t, h, "DELETE", "/submissions/job-01", 400, &e)
	if !reflect.DeepEqual(e, map[string]string{"error": "delete not allowed"}) {
		t.Errorf("delete: %v", e)
	}
	get(t, h, "DELETE", "/submissions/job-01?fields=nope", 400, &e)
	if e["error"] != "invalid fields: [nope]" {
		t.Errorf("delete with bad fields: %v", e)
	}
	var cfg map[string]any
	get(t, h, "GET", "/config_info", 200, &cfg)
	if cfg["enable_submission_delete"] != false {
		t.Errorf("config_info enable_submission_delete %v", cfg["enable_submission_delete"])
	}
}

// GET /workers in the shape of Judge0's docs/api/health_check/workers.md:
// one queue per language here.
func TestWorkers(t *testing.T) {
	_, h := newFake(t)
	var got []map[string]any
	get(t, h, "GET", "/workers", 200, &got)
	want := []map[string]any{
		{"queue": "c", "size": 0.0, "available": 1.0, "idle": 0.0, "working": 1.0, "paused": 0.0},
		{"queue": "java", "size": 2.0, "available": 0.0, "idle": 0.0, "working": 0.0, "paused": 0.0},
		{"queue": "python", "size": 7.0, "available": 3.0, "idle": 1.0, "working": 1.0, "paused": 1.0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("workers %v\nwant %v", got, want)
	}
}

// GET /system_info: the keys of Judge0's docs/api/system_and_configuration/system_info.md
// that every machine has, all strings.
func TestSystemInfo(t *testing.T) {
	_, h := newFake(t)
	var got map[string]string
	get(t, h, "GET", "/system_info", 200, &got)
	for _, k := range []string{"Architecture", "CPU(s)", "Mem", "Swap", "Workers", "Slots"} {
		if got[k] == "" {
			t.Errorf("system_info has no %q: %v", k, got)
		}
	}
	if got["Workers"] != "3" || got["Slots"] != "7" {
		t.Errorf("workers %s slots %s, want 3 and 7 (the lost one not counted)", got["Workers"], got["Slots"])
	}
	for n, want := range map[uint64]string{0: "0B", 512: "512B", 1536: "1.5Ki", 8 << 30: "8.0Gi", 77 << 30 / 10: "7.7Gi", 100 << 20: "100Mi"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %s, want %s", n, got, want)
		}
	}
}

// GET /statistics in the shape of Judge0's InfoController#statistics,
// computed at most once a minute.
func TestStatistics(t *testing.T) {
	f, h := newFake(t)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	f.tally = &store.Tally{
		Kinds: []store.KindCount{
			{Language: "python", Status: api.StatusDone, Verdict: api.VerdictOK, N: 5},
			{Language: "python", Status: api.StatusDone, Verdict: api.VerdictRuntimeError, N: 1},
			{Language: "c", Status: api.StatusDone, Verdict: api.VerdictOK, N: 2},
			{Language: "c", Status: api.StatusQueued, N: 1},
			{Language: "cobol", Status: api.StatusFailed, N: 1},
		},
		Days:  map[time.Time]int{today: 4, today.AddDate(0, 0, -1): 3, today.AddDate(0, 0, -30): 2},
		Bytes: 3 << 20,
	}
	var got struct {
		CreatedAt   string `json:"created_at"`
		CachedUntil string `json:"cached_until"`
		Submissions struct {
			Total, Today int
			Last30Days   map[string]int `json:"last_30_days"`
		}
		Languages []struct {
			Language struct {
				ID   *int
				Name string
			}
			Count int
		}
		Statuses []struct {
			Status struct {
				ID   int
				Name string
			}
			Count int
		}
		Database struct {
			SizePretty  string `json:"size_pretty"`
			SizeInBytes int64  `json:"size_in_bytes"`
		}
	}
	get(t, h, "GET", "/statistics", 200, &got)
	if got.Submissions.Total != 10 || got.Submissions.Today != 4 || len(got.Submissions.Last30Days) != 30 ||
		got.Submissions.Last30Days[today.AddDate(0, 0, -1).Format(time.DateOnly)] != 3 ||
		got.Submissions.Last30Days[today.AddDate(0, 0, -30).Format(time.DateOnly)] != 2 {
		t.Errorf("submissions %+v", got.Submissions)
	}
	if len(got.Languages) != 3 || got.Languages[0].Language.Name != "Python (3.11.2)" || *got.Languages[0].Language.ID != 71 ||
		got.Languages[0].Count != 6 || got.Languages[2].Language.ID != nil || got.Languages[2].Language.Name != "cobol" {
		t.Errorf("languages %+v", got.Languages)
	}
	var sts []string
	for _, s := range got.Statuses {
		sts = append(sts, fmt.Sprintf("%d %s %d", s.Status.ID, s.Status.Name, s.Count))
	}
	if want := []string{"3 Accepted 7", "1 In Queue 1", "11 Runtime Error (NZEC) 1", "13 Internal Error 1"}; !slices.Equal(sts, want) {
		t.Errorf("statuses %v, want %v", sts, want)
	}
	if got.Database.SizePretty != "3072 kB" || got.Database.SizeInBytes != 3<<20 {
		t.Errorf("database %+v", got.Database)
	}
	created, err1 := time.Parse(time.RFC3339, got.CreatedAt)
	until, err2 := time.Parse(time.RFC3339, got.CachedUntil)
	if err1 != nil || err2 != nil || until.Sub(created) != statsFor {
		t.Errorf("created_at %s cached_until %s", got.CreatedAt, got.CachedUntil)
	}
	get(t, h, "GET", "/statistics?invalidate_cache=true", 200, nil)
	if n := f.tallies.Load(); n != 1 {
		t.Errorf("the jobs were counted %d times, want once a minute", n)
	}
	for n, want := range map[int64]string{0: "0 bytes", 10239: "10239 bytes", 10240: "10 kB", 3 << 30: "3072 MB", 20 << 30: "20 GB"} {
		if got := prettySize(n); got != want {
			t.Errorf("prettySize(%d) = %s, want %s", n, got, want)
		}
	}
}

// GET /languages/all as Judge0's docs/api/statuses_and_languages/get_active_and_archived_languages.md:
// id, name and is_archived, by name.
func TestAllLanguages(t *testing.T) {
	_, h := newFake(t)
	var got []map[string]any
	get(t, h, "GET", "/languages/all", 200, &got)
	if len(got) != len(languages) {
		t.Fatalf("%d languages, want %d", len(got), len(languages))
	}
	names := map[string]bool{}
	for i, l := range got {
		names[l["name"].(string)] = l["is_archived"].(bool)
		if i > 0 && got[i-1]["name"].(string) > l["name"].(string) {
			t.Errorf("not by name: %v before %v", got[i-1], l)
		}
		if len(l) != 3 {
			t.Errorf("fields %v", l)
		}
	}
	for name, archived := range map[string]bool{"C (GCC 12.2.0)": false, "Python (3.11.2)": false, "Java (OpenJDK)": true, "Rust": true} {
		if a, ok := names[name]; !ok || a != archived {
			t.Errorf("%q: present %v, archived %v; want archived %v (all: %v)", name, ok, a, archived, names)
		}
	}
}
