//go:build !linux

package main

import (
	"fmt"
	"runtime"

	"github.com/ipseclab/ipseclab/topology"
)

// loadDeployed has nothing to read: labs are deployed only on Linux.
func loadDeployed(name string) (*topology.Lab, string, error) {
	return nil, "", fmt.Errorf("no lab %s is deployed on %s: labs run as Linux network namespaces; give the lab file with -t", name, runtime.GOOS)
}
