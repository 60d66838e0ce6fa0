package scheduler

import (
	"testing"
)

func worker(id string, slots int, langs ...string) *Worker {
	w := &Worker{ID: id, Slots: slots, Available: true, Languages: map[string][]string{}, Labels: map[string]string{}}
	for _, l := range langs {
		w.Languages[l] = []string{"1.0.0"}
	}
	return w
}

func TestVersionMatches(t *testing.T) {
	for _, tc := range []struct {
		installed, requested string
		want                 bool
	}{
		{"3.11.2", "", true},
		{"3.11.2", "3.11.2", true},
		{"3.11.2", "3.11", true},
		{"3.11.2", "3", true},
		{"3.110.1", "3.11", false},
		{"3.11.2", "3.12", false},
		{"17.0.15", "17", true},
		{"1", "1.0", false},
	} {
		if got := VersionMatches(tc.installed, tc.requested); got != tc.want {
			t.Errorf("VersionMatches(%q, %q) = %v, want %v", tc.installed, tc.requested, got, tc.want)
		}
	}
}

func TestCapable(t *testing.T) {
	w := worker("w", 2, "python")
	w.Languages["python"] = []string{"3.11.2"}
	w.Labels["gpu"] = "yes"
	for _, tc := range []struct {
		name string
		req  Requirements
		want bool
	}{
		{"plain", Requirements{Language: "python"}, true},
		{"other language", Requirements{Language: "c"}, false},
		{"version prefix", Requirements{Language: "python", Version: "3.11"}, true},
		{"version mismatch", Requirements{Language: "python", Version: "3.12"}, false},
		{"label match", Requirements{Language: "python", Labels: map[string]string{"gpu": "yes"}}, true},
		{"label mismatch", Requirements{Language: "python", Labels: map[string]string{"gpu": "no"}}, false},
		{"label missing", Requirements{Language: "python", Labels: map[string]string{"zone": "a"}}, false},
	} {
		if got := w.Capable(tc.req); got != tc.want {
			t.Errorf("%s: Capable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A job whose language a connected worker is still self-testing waits
// for it (it is not placed there, but its placement timeout does not
// fail it); once nobody tests it, nobody is capable.
func TestAnyCapableCountsSelfTests(t *testing.T) {
	full := worker("full", 1, "c")
	full.Running = 1 // busy, but capable: its jobs wait
	tester := worker("w", 1, "python")
	tester.Testing = map[string][]string{"go": {"1.26.8"}}
	ws := []*Worker{full, tester}
	for _, tc := range []struct {
		lang string
		want bool
	}{{"c", true}, {"go", true}, {"cobol", false}} {
		if got := AnyCapable(ws, Requirements{Language: tc.lang}); got != tc.want {
			t.Errorf("AnyCapable(%s) = %v, want %v", tc.lang, got, tc.want)
		}
	}
	tester.Testing = nil // its self-test failed
	if AnyCapable(ws, Requirements{Language: "go"}) {
		t.Error("AnyCapable(go) once nobody tests it = true")
	}
}
