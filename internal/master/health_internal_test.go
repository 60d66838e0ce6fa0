package master

import "testing"

func TestInfrastructureGaveUpIsPlain(t *testing.T) {
	want := "grappe could not run this job: the workers' sandbox failed on 3 attempts"
	if got := infrastructureGaveUp(3); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
