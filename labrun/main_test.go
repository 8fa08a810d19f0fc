package labrun_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/ipseclab/ipseclab/labrun"
)

// TestMain gives the tests a state root of their own, so that what they
// deploy (under names unique to the test process) is never recorded beside,
// or mistaken for, the labs of the machine.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ipseclab-labrun-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := labrun.SetStateRoot(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
