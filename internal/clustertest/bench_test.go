package clustertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
)

// BenchmarkSubmitWait measures the whole path of a trivial job — HTTPS,
// validation, the durable store, the scheduler, the gRPC hop, the runner and
// back — with 32 clients in flight (go test -bench SubmitWait -cpu 32 would
// change GOMAXPROCS; SetParallelism keeps the machine's cores).
func BenchmarkSubmitWait(b *testing.B) {
	c := clustertest.Start(b, clustertest.Options{Workers: []clustertest.WorkerOptions{
		{Name: "w1", Slots: 2, Languages: []string{"bash"}},
		{Name: "w2", Slots: 2, Languages: []string{"bash"}},
	}})
	c.WaitLanguage("bash")
	req := api.JobRequest{Language: "bash", Source: "exit 0"}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := req
			j, err := c.Client.SubmitWait(context.Background(), &r, time.Minute)
			if err != nil || j.Verdict != api.VerdictOK {
				b.Errorf("job: %+v %v", j, err)
				return
			}
		}
	})
}

// BenchmarkSubmitWaitSerial is the same path one job at a time: the
// latency a lone client sees, in-process (no separate client process).
func BenchmarkSubmitWaitSerial(b *testing.B) {
	c := clustertest.Start(b, clustertest.Options{Workers: []clustertest.WorkerOptions{
		{Name: "w1", Slots: 2, Languages: []string{"bash"}},
	}})
	c.WaitLanguage("bash")
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		r := api.JobRequest{Language: "bash", Source: "exit 0"}
		j, err := c.Client.SubmitWait(ctx, &r, time.Minute)
		if err != nil || j.Verdict != api.VerdictOK {
			b.Fatalf("job: %+v %v", j, err)
		}
	}
}
