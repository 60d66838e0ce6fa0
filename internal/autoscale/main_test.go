package autoscale_test

import (
	"os"
	"testing"

	"github.com/grappe/grappe/internal/clustertest"
)

// TestMain lets this test binary serve as the sandbox's init, should a
// test start in-process workers, and closes the shared sandbox.
func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }
