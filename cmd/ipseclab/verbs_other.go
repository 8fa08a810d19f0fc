//go:build !linux

package main

import "github.com/spf13/cobra"

func linuxCmds() []*cobra.Command { return linuxStandIns() }

// addLinuxRootFlags adds nothing where no lab can be deployed.
func addLinuxRootFlags(*cobra.Command) {}
