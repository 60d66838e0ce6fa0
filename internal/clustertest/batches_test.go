package clustertest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
	"github.com/grappe/grappe/internal/master"
)

func TestBatches(t *testing.T) {
	c := callbackCluster(t, 2, func(cfg *master.Config) { cfg.MaxBatch = 4 })
	r := newReceiver(t)
	ctx := context.Background()
	raw := newRaw(t, c)

	t.Run("refused whole, naming the bad job", func(t *testing.T) {
		before := jobCount(t, c)
		body := mustJSON(api.BatchRequest{Jobs: []api.JobRequest{
			{Language: "bash", Source: "true"},
			{Language: "bash", Source: "true", Limits: api.Limits{CPUMs: 1 << 40}},
			{Language: "cobol", Source: "x"},
		}})
		status, b := raw.do(t, "POST", "/api/v1/batches", strings.NewReader(body))
		if status != http.StatusUnprocessableEntity || !strings.Contains(string(b), "jobs[1]") {
			t.Errorf("batch with a bad second job: %d %s, want 422 naming jobs[1]", status, b)
		}
		tooMany := mustJSON(api.BatchRequest{Jobs: make([]api.JobRequest, 5)})
		if status, b := raw.do(t, "POST", "/api/v1/batches", strings.NewReader(tooMany)); status != http.StatusUnprocessableEntity {
			t.Errorf("5 jobs over --max-batch 4: %d %s", status, b)
		}
		if status, b := raw.do(t, "POST", "/api/v1/batches", strings.NewReader(`{"jobs":[]}`)); status != http.StatusUnprocessableEntity {
			t.Errorf("empty batch: %d %s", status, b)
		}
		if status, b := raw.do(t, "POST", "/api/v1/batches", strings.NewReader(`{"jobs":[{"language":"bash","source":"true","nope":1}]}`)); status != http.StatusBadRequest {
			t.Errorf("unknown field: %d %s", status, b)
		}
		if after := jobCount(t, c); after != before {
			t.Errorf("refused batches made %d jobs", after-before)
		}
	})

	t.Run("totals and the batch's callback", func(t *testing.T) {
		ok := "ok"
		b, err := c.Client.SubmitBatch(ctx, &api.BatchRequest{CallbackURL: r.url("/batch"), Jobs: []api.JobRequest{
			{Language: "bash", Source: "echo ok", ExpectedOutput: &ok},
			{Language: "bash", Source: "echo nope", ExpectedOutput: &ok},
			{Language: "bash", Source: "exit 3"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if len(b.JobIDs) != 3 || b.Totals.Jobs != 3 || b.Owner != "admin" {
			t.Fatalf("SubmitBatch = %+v", b)
		}
		d := r.delivered(t, "/batch", 60*time.Second)
		secret, _ := c.Client.CallbackSecret(ctx)
		if err := client.VerifyCallback(secret, d.signature, d.body, 0, time.Now()); err != nil {
			t.Fatalf("batch callback signature: %v", err)
		}
		var got api.Batch
		if err := json.Unmarshal(d.body, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]int{api.VerdictOK: 1, api.VerdictWrongAnswer: 1, api.VerdictRuntimeError: 1}
		if got.ID != b.ID || got.Status != api.BatchDone || got.Totals.ByStatus[api.StatusDone] != 3 || !sameCounts(got.Totals.ByVerdict, want) {
			t.Fatalf("batch callback %s", d.body)
		}
		if got.Jobs[1].ID != b.JobIDs[1] || got.Jobs[1].Verdict != api.VerdictWrongAnswer {
			t.Fatalf("jobs out of order: %+v", got.Jobs)
		}
		var read *api.Batch
		c.Eventually(10*time.Second, "batch callback recorded", func() bool {
			read, err = c.Client.Batch(ctx, b.ID)
			return err == nil && read.Callback != nil && read.Callback.Status == api.CallbackDelivered
		})
		if read.Status != api.BatchDone || !sameCounts(read.Totals.ByVerdict, want) {
			t.Fatalf("GET batch = %+v", read)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		b, err := c.Client.SubmitBatch(ctx, &api.BatchRequest{Jobs: []api.JobRequest{
			{Language: "bash", Source: "sleep 30"}, {Language: "bash", Source: "sleep 30"},
			{Language: "bash", Source: "sleep 30"}, {Language: "bash", Source: "sleep 30"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		c.Eventually(10*time.Second, "two jobs of the batch running", func() bool {
			got, err := c.Client.Batch(ctx, b.ID)
			return err == nil && got.Totals.ByStatus[api.StatusRunning] == 2
		})
		got, err := c.Client.CancelBatch(ctx, b.ID)
		if err != nil || got.Status != api.BatchDone || got.Totals.ByStatus[api.StatusCancelled] != 4 {
			t.Fatalf("CancelBatch = %+v, %v", got, err)
		}
		c.Eventually(5*time.Second, "slots freed", func() bool {
			ws := c.Master.Workers(ctx)
			return len(ws) == 1 && ws[0].Running == 0
		})
	})

	t.Run("owner only", func(t *testing.T) {
		b, err := c.Client.SubmitBatch(ctx, &api.BatchRequest{Jobs: []api.JobRequest{{Language: "bash", Source: "true"}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Client.AddUser(ctx, "mallory", "correct horse battery", api.RoleUser); err != nil {
			t.Fatal(err)
		}
		tok, err := c.Client.Login(ctx, "mallory", "correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		other := c.NewClient(tok)
		if _, err := other.Batch(ctx, b.ID); !client.IsNotFound(err) {
			t.Errorf("another user's batch: %v, want not found", err)
		}
		if _, err := other.CancelBatch(ctx, b.ID); !client.IsNotFound(err) {
			t.Errorf("cancel of another user's batch: %v, want not found", err)
		}
		theirs, err := other.SubmitBatch(ctx, &api.BatchRequest{Jobs: []api.JobRequest{{Language: "bash", Source: "true"}}})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.Client.Batch(ctx, theirs.ID); err != nil || got.Owner != "mallory" {
			t.Errorf("an admin reading a user's batch: %+v, %v", got, err)
		}
		if _, err := c.Client.Batch(ctx, "no-such-batch"); !client.IsNotFound(err) {
			t.Errorf("unknown batch: %v", err)
		}
		mine, _ := other.CallbackSecret(ctx)
		admin, _ := c.Client.CallbackSecret(ctx)
		if mine == "" || mine == admin {
			t.Errorf("users share a callback secret: %q %q", mine, admin)
		}
		// A user removed and made again does not inherit the secret.
		time.Sleep(time.Millisecond)
		if err := c.Client.RemoveUser(ctx, "mallory"); err != nil {
			t.Fatal(err)
		}
		if err := c.Client.AddUser(ctx, "mallory", "correct horse battery", api.RoleUser); err != nil {
			t.Fatal(err)
		}
		tok, err = c.Client.Login(ctx, "mallory", "correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		if again, err := c.NewClient(tok).CallbackSecret(ctx); err != nil || again == mine {
			t.Errorf("the new mallory's secret: %q, %v (the old one's was %q)", again, err, mine)
		}
	})

	t.Run("idempotency key", func(t *testing.T) {
		body := mustJSON(api.BatchRequest{Jobs: []api.JobRequest{{Language: "bash", Source: "true"}}})
		var ids []string
		for range 2 {
			req, _ := http.NewRequest("POST", c.Master.URL()+"/api/v1/batches", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+c.Token)
			req.Header.Set("Idempotency-Key", "batch-key-1")
			resp, err := raw.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var b api.Batch
			if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || resp.StatusCode != http.StatusCreated {
				t.Fatalf("POST with a key: %d %v", resp.StatusCode, err)
			}
			resp.Body.Close()
			ids = append(ids, b.ID+"/"+strings.Join(b.JobIDs, ","))
		}
		if ids[0] != ids[1] {
			t.Errorf("a retried batch made another: %v", ids)
		}
	})

	t.Run("judge0 batch with callbacks", func(t *testing.T) {
		jc := newCompat(t, c).with("X-Auth-Token", "", c.Token)
		body := mustJSON(map[string]any{"submissions": []map[string]any{
			{"source_code": `print("from judge0")`, "language_id": 71, "callback_url": r.url("/judge0")},
			{"source_code": "x", "language_id": 9999},
			{"source_code": "echo forbidden", "language_id": 46, "callback_url": "http://169.254.169.254/"},
			{"source_code": "echo plain", "language_id": 46},
		}})
		var out []map[string]any
		jc.json(t, "POST", "/judge0/submissions/batch", body, 201, &out)
		if len(out) != 4 || out[0]["token"] == nil || out[1]["language_id"] == nil || out[2]["callback_url"] == nil || out[3]["token"] == nil {
			t.Fatalf("batch answer %v", out)
		}
		d := r.delivered(t, "/judge0", 60*time.Second)
		var s judge0Submission
		if err := json.Unmarshal(d.body, &s); err != nil {
			t.Fatal(err)
		}
		if d.method != "PUT" || s.Token != out[0]["token"] || s.status() != 3 || unb64(t, s.Stdout) != "from judge0\n" {
			t.Fatalf("judge0 callback %s %s", d.method, d.body)
		}
		// One submission with a callback, waited for.
		var one judge0Submission
		jc.json(t, "POST", "/judge0/submissions?wait=true", mustJSON(map[string]any{
			"source_code": "echo one >&2", "language_id": 46, "callback_url": r.url("/judge0-one"), "redirect_stderr_to_stdout": true,
		}), 201, &one)
		d = r.delivered(t, "/judge0-one", 60*time.Second)
		var cb judge0Submission
		if err := json.Unmarshal(d.body, &cb); err != nil || cb.Token != one.Token || !strings.HasSuffix(cb.Token, ".r") || unb64(t, cb.Stdout) != "one\n" {
			t.Fatalf("single submission's callback %s (token %q): %v", d.body, one.Token, err)
		}
		tokens := out[0]["token"].(string) + "," + out[3]["token"].(string)
		var shown struct {
			Submissions []judge0Submission `json:"submissions"`
		}
		c.Eventually(30*time.Second, "both judge0 submissions finished", func() bool {
			jc.json(t, "GET", "/judge0/submissions/batch?tokens="+tokens, "", 200, &shown)
			return len(shown.Submissions) == 2 && shown.Submissions[0].status() == 3 && shown.Submissions[1].status() == 3
		})
	})
}

func sameCounts(got, want map[string]int) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	for k, v := range got {
		if want[k] != v && v != 0 {
			return false
		}
	}
	return true
}
