// Package deps pins the modules that parts of ipseclab under construction will use,
// so that parallel work does not race on go.mod. Remove once every import is real.
package deps

import (
	_ "github.com/containernetworking/plugins/pkg/ip"
	_ "github.com/containernetworking/plugins/pkg/ns"
	_ "github.com/containernetworking/plugins/pkg/utils/sysctl"
	_ "github.com/google/gopacket"
	_ "github.com/google/gopacket/pcapgo"
	_ "github.com/google/nftables"
	_ "github.com/spf13/cobra"
	_ "github.com/ti-mo/conntrack"
	_ "github.com/vishvananda/netlink"
	_ "github.com/vishvananda/netns"
	_ "golang.org/x/crypto/chacha20poly1305"
	_ "golang.org/x/sys/unix"
	_ "golang.org/x/term"
	_ "gopkg.in/yaml.v3"
)
