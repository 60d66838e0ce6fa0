package cli

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/grappe/grappe/api"
)

func TestAutoscaleFlags(t *testing.T) {
	var f autoscaleFlags
	fl := pflag.NewFlagSet("t", pflag.ContinueOnError)
	f.register(fl)
	err := fl.Parse([]string{"--autoscale", "local", "--autoscale-min", "2", "--autoscale-max", "6", "--autoscale-idle", "90s",
		"--autoscale-max-jobs", "3", "--autoscale-languages", "python, c", "--autoscale-worker-args", "--labels=zone=a"})
	if err != nil {
		t.Fatal(err)
	}
	f.noSandbox = true
	cfg := f.config("cat.yaml", "debug", "/srv/grappe")
	p := cfg.Policy
	if cfg.Provisioner != "local" || p.Min != 2 || p.Max != 6 || p.Idle != 90*time.Second || p.SlotsPerWorker != 3 ||
		!slices.Equal(p.Languages, []string{"python", "c"}) || p.Wait != 10*time.Second {
		t.Fatalf("config %+v", cfg)
	}
	args := strings.Join(cfg.WorkerArgs, " ")
	if !strings.Contains(args, "/cat.yaml --log-level debug --insecure-no-sandbox --toolchain-cache /srv/grappe/toolchains --labels=zone=a") || !strings.HasPrefix(args, "--catalogue /") {
		t.Fatalf("worker args %q", args)
	}
	if off := (&autoscaleFlags{}).config("", "", ""); off.Provisioner != "" {
		t.Fatalf("no --autoscale: %+v", off)
	}
}

func TestPrintWorkersStartedBy(t *testing.T) {
	var b bytes.Buffer
	err := printWorkers(&b, []api.Worker{
		{Name: "auto-1", Status: api.WorkerUp, StartedBy: &api.WorkerOrigin{Provisioner: "local", Reason: "12 queued jobs, 0 free slots"}},
		{Name: "manual", Status: api.WorkerUp},
	}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "STARTED BY") || !strings.Contains(out, "autoscaler (local): 12 queued jobs, 0 free slots") {
		t.Fatalf("output:\n%s", out)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); !strings.HasSuffix(lines[2], " -") {
		t.Fatalf("a worker started by hand: %q", lines[2])
	}
}
