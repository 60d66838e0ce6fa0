package sandbox

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as the Linux sandbox's init, which
// re-executes /proc/self/exe, and as a neighbouring worker for the tests
// of two sandboxes on one host (neighbourMain).
func TestMain(m *testing.M) {
	InitMain()
	neighbourMain()
	os.Exit(m.Run())
}
