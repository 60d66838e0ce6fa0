//go:build !linux

package sandbox

// neighbourMain: the neighbour tests are Linux only.
func neighbourMain() {}
