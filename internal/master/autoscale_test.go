package master_test

import (
	"context"
	"testing"
	"time"

	"github.com/grappe/grappe/internal/autoscale"
	"github.com/grappe/grappe/internal/clustertest"
	"github.com/grappe/grappe/internal/master"
)

// TestAutoscalerAPIAndMetrics checks the wiring: GET /api/v1/autoscaler
// and the desired/actual gauges, with an exec provisioner whose workers
// never join (the real ones are in internal/autoscale's tests).
func TestAutoscalerAPIAndMetrics(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Master: func(cfg *master.Config) {
		cfg.Autoscale = master.AutoscaleConfig{
			Provisioner: "exec", StartCmd: "true", StopCmd: "true", Interval: 50 * time.Millisecond,
			Policy: autoscale.Policy{Min: 2, Max: 3, JoinTimeout: time.Hour},
		}
	}})
	ctx := context.Background()
	c.Eventually(10*time.Second, "the minimum started", func() bool {
		st, err := c.Client.Autoscaler(ctx)
		return err == nil && len(st.Workers) == 2
	})
	st, err := c.Client.Autoscaler(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Enabled || st.Provisioner != "exec" || st.Policy.Min != 2 || st.Policy.Max != 3 || st.Desired != 2 || st.Actual != 0 {
		t.Errorf("status %+v policy %+v", st, st.Policy)
	}
	if w := st.Workers[0]; w.Name != "auto-1" || w.Phase != "starting" || w.Reason == "" {
		t.Errorf("worker %+v", w)
	}
	if len(st.Decisions) != 2 || st.Decisions[0].Action != "start" {
		t.Errorf("decisions %+v", st.Decisions)
	}
	fams := scrape(t, c)
	if d, a := value(fams, "grappe_autoscaler_desired_workers", nil), value(fams, "grappe_autoscaler_actual_workers", nil); d != 2 || a != 0 {
		t.Errorf("gauges desired %v actual %v, want 2 and 0", d, a)
	}
}

func TestAutoscalerOff(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	st, err := c.Client.Autoscaler(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Enabled || st.Workers == nil || st.Decisions == nil {
		t.Errorf("status %+v", st)
	}
	if _, ok := scrape(t, c)["grappe_autoscaler_desired_workers"]; ok {
		t.Error("autoscaler gauges without an autoscaler")
	}
}

func TestAutoscaleConfigRefused(t *testing.T) {
	for _, as := range []master.AutoscaleConfig{
		{Provisioner: "cloud"},
		{Provisioner: "exec", StartCmd: "true"},
		{Provisioner: "local", Policy: autoscale.Policy{Min: 5, Max: 2}},
	} {
		_, err := master.New(master.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0", Autoscale: as})
		if err == nil {
			t.Errorf("%+v accepted", as)
		}
	}
}
