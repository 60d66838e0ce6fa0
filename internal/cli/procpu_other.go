//go:build !unix

package cli

// processCPU is not measured here.
func processCPU() (float64, bool) { return 0, false }
