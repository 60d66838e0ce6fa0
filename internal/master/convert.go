package master

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clusterpb"
	"github.com/grappe/grappe/internal/jobs"
	"github.com/grappe/grappe/internal/jobspec"
	"github.com/grappe/grappe/internal/store"
)

// resultDoc is what the store keeps of a job's outcome.
type resultDoc struct {
	Compile *api.Compile     `json:"compile,omitempty"`
	Run     *api.Run         `json:"run,omitempty"`
	Tests   []api.TestResult `json:"tests,omitempty"`
}

// buildSpec turns a validated submission into what the worker receives.
func buildSpec(v *jobspec.Job, req *api.JobRequest) *clusterpb.JobSpec {
	spec := &clusterpb.JobSpec{
		Language:    v.Lang.Name,
		Version:     req.Version,
		Stdin:       v.Stdin,
		Args:        req.Args,
		CompileArgs: req.CompileArgs,
		Limits: &clusterpb.Limits{
			CpuMs: v.Limits.CPUMs, WallMs: v.Limits.WallMs, MemoryMb: v.Limits.MemoryMB,
			Processes: v.Limits.Processes, OutputKb: v.Limits.OutputKB,
			TotalOutputKb: v.Limits.TotalOutputKB,
		},
		HasExpected:    req.ExpectedOutput != nil,
		ExpectedOutput: v.Expected,
		StopOnFailure:  req.StopOnFailure,
		Interactive:    req.Interactive,
	}
	for _, f := range v.Files {
		spec.Files = append(spec.Files, &clusterpb.File{Name: f.Name, Content: f.Content})
	}
	for _, t := range v.Tests {
		spec.Tests = append(spec.Tests, &clusterpb.TestCase{Stdin: t.Stdin, HasExpected: t.HasExpected, ExpectedOutput: t.Expected})
	}
	return spec
}

// liveFromStore rebuilds the in-memory job from its stored submission.
func (m *Master) liveFromStore(sj *store.Job) (*liveJob, error) {
	var req api.JobRequest
	if err := json.Unmarshal(sj.Request, &req); err != nil {
		return nil, fmt.Errorf("decode request: %w", err)
	}
	v, err := m.validate(&req)
	if err != nil {
		return nil, fmt.Errorf("revalidate request: %w", err)
	}
	return newLiveJob(sj, v, &req), nil
}

// newLiveJob is the working copy of stored job sj.
func newLiveJob(sj *store.Job, v *jobspec.Job, req *api.JobRequest) *liveJob {
	return &liveJob{
		id: sj.ID, owner: sj.Owner, language: v.Lang.Name, version: req.Version,
		spec:     buildSpec(v, req),
		attempt:  sj.Attempts,
		queuedAt: time.Now(),
	}
}

// finishFromResult turns a worker's result into the terminal record.
func finishFromResult(r *clusterpb.Result) (store.Finish, error) {
	if r.Error != "" {
		return store.Finish{Status: store.StatusFailed, Error: r.Error, Version: r.Version}, nil
	}
	doc := resultDoc{}
	if c := r.Compile; c != nil && c.Ran {
		ac := &api.Compile{ExitCode: int(c.ExitCode), WallMs: c.WallMs, Cached: c.Cached}
		ac.Stdout, ac.StdoutEncoding = encodeOutput(c.Stdout)
		ac.Stderr, ac.StderrEncoding = encodeOutput(c.Stderr)
		doc.Compile = ac
	}
	if r.Run != nil {
		doc.Run = apiRun(r.Run)
	}
	for _, t := range r.Tests {
		doc.Tests = append(doc.Tests, api.TestResult{Verdict: t.Verdict, Run: *apiRun(t)})
	}
	b, err := json.Marshal(&doc)
	if err != nil {
		return store.Finish{}, err
	}
	return store.Finish{Status: store.StatusDone, Verdict: r.Verdict, Version: r.Version, Result: b}, nil
}

func apiRun(r *clusterpb.RunResult) *api.Run {
	ar := &api.Run{
		ExitCode: int(r.ExitCode), Signal: r.Signal,
		CPUMs: r.CpuMs, WallMs: r.WallMs, MemoryKB: r.MemoryKb,
		OutputTruncated: r.OutputTruncated,
	}
	ar.Stdout, ar.StdoutEncoding = encodeOutput(r.Stdout)
	ar.Stderr, ar.StderrEncoding = encodeOutput(r.Stderr)
	return ar
}

// toAPI renders a stored job. withRequest adds the submission (for the
// job's own page; lists leave it out to stay small).
func toAPI(sj *store.Job, withRequest bool) (*api.Job, error) {
	j := &api.Job{
		ID: sj.ID, Owner: sj.Owner, Language: sj.Language, Version: sj.Version,
		Status: sj.Status, Verdict: sj.Verdict, Error: sj.Error,
		Attempts: sj.Attempts, MaxAttempts: sj.MaxAttempts, Worker: sj.Worker,
		Priority: sj.Priority, Labels: sj.Labels, CreatedAt: sj.CreatedAt,
	}
	if jobs.IsInteractive(sj) {
		// The mark is the store's business, not the owner's labels.
		j.Interactive = true
		j.Labels = maps.Clone(sj.Labels)
		delete(j.Labels, jobs.AttachLabel)
		if len(j.Labels) == 0 {
			j.Labels = nil
		}
	}
	if !sj.StartedAt.IsZero() {
		t := sj.StartedAt
		j.StartedAt = &t
	}
	if !sj.FinishedAt.IsZero() {
		t := sj.FinishedAt
		j.FinishedAt = &t
	}
	if len(sj.Result) > 0 {
		var doc resultDoc
		if err := json.Unmarshal(sj.Result, &doc); err != nil {
			return nil, fmt.Errorf("decode result of %s: %w", sj.ID, err)
		}
		j.Compile, j.Run, j.Tests = doc.Compile, doc.Run, doc.Tests
	}
	if withRequest && len(sj.Request) > 0 {
		var req api.JobRequest
		if err := json.Unmarshal(sj.Request, &req); err == nil {
			j.Request = &req
		}
	}
	return j, nil
}
