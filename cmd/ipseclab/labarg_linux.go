//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/labs"
	"github.com/ipseclab/ipseclab/topology"
)

// loadDeployed reads the copy of the lab file kept in the lab's state. The
// files it names (certificates, keys) are read where the lab process read
// them: beside the original lab file, or in the shipped lab's directory.
func loadDeployed(name string) (*topology.Lab, string, error) {
	st, err := labrun.ReadState(name)
	if err != nil {
		return nil, "", err
	}
	var files topology.FileReader
	if shipped, ok := strings.CutPrefix(st.File, "embedded:"); ok {
		files = topology.FSReader(labs.FS(), shipped)
	} else if st.File != "" {
		dir := st.File // a lab directory, or its lab file
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			dir = filepath.Dir(dir)
		}
		files = topology.DirReader(dir)
	}
	lab, err := topology.LoadFiles(labrun.StateLabFile(name), files)
	if err != nil {
		return nil, "", fmt.Errorf("lab %s: the copy of its lab file in %s is unreadable: %w", name, labrun.StateDir(name), err)
	}
	lab.Name = name // it may have been deployed under another name than the file's (--name)
	return lab, st.File, nil
}
