//go:build linux

package main

import (
	"fmt"

	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/topology"
)

// loadDeployed reads the copy of the lab file kept in the lab's state.
func loadDeployed(name string) (*topology.Lab, string, error) {
	st, err := labrun.ReadState(name)
	if err != nil {
		return nil, "", err
	}
	lab, err := topology.Load(labrun.StateLabFile(name))
	if err != nil {
		return nil, "", fmt.Errorf("lab %s: the copy of its lab file in %s is unreadable: %w", name, labrun.StateDir(name), err)
	}
	lab.Name = name // it may have been deployed under another name than the file's (--name)
	return lab, st.File, nil
}
