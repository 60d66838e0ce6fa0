package cli

import (
	"os"
	"testing"

	"github.com/grappe/grappe/internal/clustertest"
)

// TestMain lets this test binary serve as the sandbox's init (the Linux
// sandbox re-executes the running binary) and closes the shared sandbox.
func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }
