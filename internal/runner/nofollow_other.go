//go:build !unix

package runner

// oNoFollow is absent where there is no O_NOFOLLOW; workers run on Linux,
// this only lets the client side of the binary build elsewhere.
const oNoFollow = 0
