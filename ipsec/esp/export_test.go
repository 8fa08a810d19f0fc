package esp

import "testing"

// AllowUnprotectedForCeiling lets SAs take NULL encryption without integrity
// until the benchmark ends (see unprotectedForCeiling), for the throughput
// benchmark in package esp_test.
func AllowUnprotectedForCeiling(b testing.TB) {
	unprotectedForCeiling = true
	b.Cleanup(func() { unprotectedForCeiling = false })
}
