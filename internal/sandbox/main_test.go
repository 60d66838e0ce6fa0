package sandbox

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as the Linux sandbox's init, which
// re-executes /proc/self/exe.
func TestMain(m *testing.M) {
	InitMain()
	os.Exit(m.Run())
}
