package master

import (
	"testing"
	"time"

	"github.com/grappe/grappe/internal/store"
)

func TestHistoryPointsMergeSteps(t *testing.T) {
	since := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return since.Add(time.Duration(s) * time.Second) }
	samples := []*store.StatsSample{
		// Two masters in the first minute, one in the third; none in the second.
		{Master: "a", Time: at(15), QueueDepth: 3, Running: 1, Submitted: 4, Completed: 2, QueueWaitMs: 10},
		{Master: "b", Time: at(15), QueueDepth: 3, Running: 1, Submitted: 1, Completed: 1},
		{Master: "a", Time: at(45), QueueDepth: 5, Running: 2, Submitted: 2, Completed: 6, QueueWaitMs: 30},
		{Master: "a", Time: at(135), QueueDepth: 1, Running: 0, Submitted: 0, Completed: 1},
	}
	st := historyPoints(samples, time.Minute, at(300))
	if st.IntervalSeconds != 60 || len(st.Points) != 2 {
		t.Fatalf("%+v", st)
	}
	p := st.Points[0]
	if !p.Time.Equal(at(60)) || p.Submitted != 7 || p.Completed != 9 || p.QueueDepth != 5 || p.Running != 2 || p.QueueWaitMs != 20 {
		t.Errorf("first minute: %+v", p)
	}
	if p := st.Points[1]; !p.Time.Equal(at(180)) || p.Completed != 1 {
		t.Errorf("third minute: %+v", p)
	}
	// A step still filling is shown at its last sample, not in the future.
	st = historyPoints(samples, time.Minute, at(150))
	if p := st.Points[1]; !p.Time.Equal(at(135)) {
		t.Errorf("the filling step at %v, want its last sample's time", p.Time.Sub(since))
	}
	// Steps are on the clock: a sample at the end of a step is in it.
	edge := []*store.StatsSample{{Time: at(60), Completed: 1}, {Time: at(61), Completed: 2}}
	if st := historyPoints(edge, time.Minute, at(300)); len(st.Points) != 2 || !st.Points[0].Time.Equal(at(60)) || st.Points[1].Completed != 2 {
		t.Errorf("samples at a step's end and just after: %+v", st.Points)
	}
	if st := historyPoints(nil, time.Minute, at(0)); st.Points == nil || len(st.Points) != 0 {
		t.Errorf("no sample: %+v", st)
	}
}
