// Package nat turns a lab's `kind: nat` node into a NAT box made of real Linux
// netfilter NAT, so that the IPsec nodes behind it meet the same mappings, port
// changes, timeouts and reboots that they meet behind a home router or a
// carrier NAT.
//
// A NAT node has inside interfaces and one outside interface. Everything the
// package does happens inside the node's network namespace: an nftables table
// of its own (TableName), programmed over netlink with github.com/google/nftables,
// and a few per-namespace conntrack sysctls. No `nft` or `iptables` binary is
// used, the host's ruleset is never touched, and removing the namespace
// removes every rule with it. What the box does is a natconf.Config, the
// lab file's `nat:` block.
//
// The table, for outside interface eth1 (in nft's notation):
//
//	table ip ipseclab {
//	  chain prerouting {   # type nat hook prerouting priority dstnat
//	    iifname "eth1" udp dport 500 dnat to 192.168.1.10       # one per forward
//	  }
//	  chain postrouting {  # type nat hook postrouting priority srcnat
//	    oifname "eth1" udp sport 500 snat to OUTSIDE-ADDR:1024-65535 [fully-random]  # ike-port: remap
//	    oifname "eth1" meta l4proto { udp, tcp } snat to OUTSIDE-ADDR:1024-65535 fully-random  # ports: random
//	    oifname "eth1" masquerade [fully-random]                # ports: preserve | random (ICMP, ESP)
//	  }
//	  chain forward {      # type filter hook forward priority filter
//	    meta l4proto esp drop                                   # esp: drop
//	    iifname "eth1" ct state established,related accept
//	    iifname "eth1" ct status dnat accept
//	    iifname "eth1" drop
//	  }
//	}
//
// The last three forward rules make the box behave like the NATs people meet:
// from the outside, only replies to a mapping and declared forwards get in.
// Without them, any outside host with a route to the inside network would reach
// it, which no home router allows. The NAT translates IPv4 only; IPv6 has no NAT
// and is routed untouched.
//
// At run time, Box.Show lists the mappings (conntrack entries that were NATed),
// Box.Flush forgets them all as a rebooted NAT would, and a watcher turns
// conntrack's new and destroy events into events.NATMappingNew and
// events.NATMappingExpired on the lab's bus.
package nat
