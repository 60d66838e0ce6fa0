//go:build linux

package sandbox

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestRepair: the sandbox's cgroups removed from under it (as a
// neighbour running an older grappe did), commands fail with
// ErrInfrastructure and a message without host paths; after Repair they
// run again, under the same base cgroup.
func TestRepair(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
	}{{"pooled", Config{PoolSize: 2}}, {"single use", Config{PoolSize: 1, SingleUse: true}}} {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLinux(t, tt.cfg)
			// Every command at its limits, so that the recycled cgroups
			// (v1) are written nothing new and fail only when joined.
			execOK(t, l, &Cmd{Args: sh("echo ok"), Limits: limits})
			bases := baseDirs(l)
			breakCgroups(bases)

			// Each of the prepared cgroups, and the next ones made, fail;
			// never with a program's outcome.
			var failed error
			for range 2*tt.cfg.PoolSize + 2 {
				o, err := l.Exec(context.Background(), &Cmd{Args: sh("echo ok"), Dir: t.TempDir(), Limits: limits})
				if err == nil {
					t.Fatalf("a command ran without its cgroup: %+v", o)
				}
				if !errors.Is(err, ErrInfrastructure) {
					t.Fatalf("error %v, want ErrInfrastructure", err)
				}
				if strings.Contains(err.Error(), "/sys/") || strings.Contains(err.Error(), filepath.Base(bases[0])) {
					t.Errorf("host paths in %q", err)
				}
				failed = err
			}
			t.Logf("without cgroups: %v", failed)

			if err := l.Repair(context.Background()); err != nil {
				t.Fatalf("Repair: %v", err)
			}
			if got := baseDirs(l); !equalStrings(got, bases) {
				t.Errorf("base cgroups %v after repair, want %v", got, bases)
			}
			for range 2*tt.cfg.PoolSize + 2 {
				assertHealthy(t, l)
			}
		})
	}
}

// breakCgroups kills what runs in the base cgroups and removes them.
func breakCgroups(bases []string) {
	for _, b := range bases {
		removeTree(b, "cgroup.procs")
	}
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}
