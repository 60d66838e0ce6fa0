package cli

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
)

// TestTopText checks grappe top's one-shot text mode (stdout is not a
// terminal here): one snapshot and exit 0, or the reason and exit 1.
func TestTopText(t *testing.T) {
	now := time.Now()
	admin := func(f *fakeMaster, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/cluster":
			writeJSONTest(w, 200, api.Cluster{Workers: map[string]int{"up": 1}, Jobs: map[string]int{"done": 7},
				Slots: 4, SlotsInUse: 1, QueueDepth: 2})
		case "/api/v1/workers":
			writeJSONTest(w, 200, api.WorkerList{Workers: []api.Worker{{Name: "w1", Status: "up", Sandbox: "cgroup-v2",
				Slots: 4, Running: 1, CPUPercent: 12.5, LastHeartbeat: now,
				Languages: []api.WorkerLanguage{{Name: "python", Version: "3.11"}}}}})
		case "/api/v1/clients":
			writeJSONTest(w, 200, api.ClientList{Clients: []api.Client{{User: "alice", Address: "10.1.2.3", Since: now, JobsTotal: 7}}})
		case "/api/v1/stats":
			writeJSONTest(w, 200, api.Stats{IntervalSeconds: 5, Points: []api.StatsPoint{{Completed: 10}}})
		}
	}
	forbidden := func(f *fakeMaster, w http.ResponseWriter, r *http.Request) {
		writeJSONTest(w, 403, api.ErrorBody{Error: api.ErrorDetail{Code: api.CodeForbidden, Message: "admin only"}})
	}
	tests := []struct {
		name    string
		handler func(*fakeMaster, http.ResponseWriter, *http.Request)
		code    int
		has     []string
	}{
		{"admin", admin, 0, []string{"1 up", "slots 1/4 used", "queue 2", "7 done", "2.00 done/s", "w1", "12.5", "python", "alice", "10.1.2.3"}},
		{"not admin", forbidden, 1, []string{"needs an admin token", "403"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeMaster(t, tt.handler)
			cliEnv(t)
			res := runCLI(t, "", "top", "--addr", f.srv.URL, "--ca", f.caFile, "--token", "tok")
			if res.code != tt.code {
				t.Errorf("exit %d, want %d (%s)", res.code, tt.code, res.stderr)
			}
			for _, s := range tt.has {
				if !strings.Contains(res.stdout+res.stderr, s) {
					t.Errorf("output lacks %q:\n%s%s", s, res.stdout, res.stderr)
				}
			}
			if tt.code == 0 && strings.Contains(res.stdout, "q quit") {
				t.Errorf("text mode shows the keys:\n%s", res.stdout)
			}
		})
	}
}
