package clustertest_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
	"github.com/grappe/grappe/internal/clustertest"
)

// TestEventStreamResumes: an event stream whose connection drops while
// the job writes is resumed by the client with Last-Event-ID, and the
// master sends only what followed: the output events received, end to
// end, are exactly the job's output, each starting where the last one
// ended, with no byte twice.
func TestEventStreamResumes(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{
		Workers: []clustertest.WorkerOptions{{Name: "w1", Slots: 1, Languages: []string{"bash"}}},
	})
	c.WaitLanguage("bash")
	proxy, err := clustertest.NewProxy(c.Master.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	cl, err := client.New(client.Config{Addr: "https://" + proxy.Addr(), Token: c.Token, CAPEM: c.Master.CAPEM()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	j, err := cl.Submit(ctx, &api.JobRequest{Language: "bash",
		Source: "for i in $(seq 1 30); do echo \"line $i\"; sleep 0.1; done"})
	if err != nil {
		t.Fatal(err)
	}
	var (
		got      strings.Builder
		end      int64 // where the output received so far ends
		outputs  int
		cuts     atomic.Int32
		final    *api.Job
		overlaps []string
	)
	err = cl.Events(ctx, j.ID, func(ev api.Event) error {
		switch ev.Type {
		case "output":
			if ev.Offset != end {
				overlaps = append(overlaps, strings.TrimSpace(ev.Data))
			}
			got.WriteString(ev.Data)
			end = ev.Offset + int64(len(ev.Data))
			// Cut the connection twice while the job writes: the
			// client reconnects through the proxy to the same master,
			// which has all of the output in its backlog.
			if outputs++; outputs == 5 || outputs == 15 {
				cuts.Add(1)
				go proxy.Retarget(c.Master.Addr())
			}
		case "end":
			final = ev.Job
		}
		return nil
	})
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	if cuts.Load() != 2 || final == nil || final.Status != api.StatusDone || final.Run == nil {
		t.Fatalf("cuts %d, end %+v: want two cuts and the job's end", cuts.Load(), final)
	}
	if len(overlaps) > 0 {
		t.Errorf("output events not starting where the last ended (resent or skipped): %q", overlaps)
	}
	if got.String() != final.Run.Stdout {
		t.Errorf("the stream's output:\n%q\nthe job's:\n%q", got.String(), final.Run.Stdout)
	}
}
