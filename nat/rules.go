package nat

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/nat/natconf"
)

// TableName is the nftables table ipseclab owns in a NAT node's namespace.
// Nothing else in the namespace is touched.
const TableName = "ipseclab"

// ike-port: remap and ports: random draw outside ports from this range, the
// unprivileged ports. The kernel's own choice when no range is given keeps a
// privileged port privileged (500 becomes one of 1-511), which no NAT people
// meet does.
const remapPortMin, remapPortMax = 1024, 65535

// applyRules replaces the namespace's ipseclab table with the one that
// implements c, in one netlink batch: the kernel applies the whole table or
// none of it, so a failed apply leaves the previous behaviour in place.
// remapAddr is the outside interface's IPv4 address, the source of the rules
// that choose a port range (ike-port: remap, ports: random).
func applyRules(ns netns.NsHandle, c *natconf.Config, outside string, remapAddr netip.Addr) error {
	conn, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	old, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("nftables: list tables: %w", err)
	}
	for _, t := range old {
		if t.Name == TableName {
			conn.DelTable(t)
		}
	}
	t := conn.AddTable(&nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4})
	accept := nftables.ChainPolicyAccept

	pre := conn.AddChain(&nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest, Policy: &accept})
	for _, f := range c.Forward {
		conn.AddRule(&nftables.Rule{Table: t, Chain: pre, Exprs: forwardExprs(outside, f)})
	}

	post := conn.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept})
	for _, r := range postroutingRules(c, outside, remapAddr) {
		conn.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: r})
	}

	fwd := conn.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	if c.ESP == natconf.ESPDrop {
		// meta l4proto esp drop, in both directions.
		conn.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: concat(
			matchL4(unix.IPPROTO_ESP), verdict(expr.VerdictDrop))})
	}
	// From the outside, only replies to mappings and declared forwards get in.
	conn.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: concat(
		matchIf(expr.MetaKeyIIFNAME, outside),
		matchCtBits(expr.CtKeySTATE, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED),
		verdict(expr.VerdictAccept))})
	conn.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: concat(
		matchIf(expr.MetaKeyIIFNAME, outside),
		matchCtBits(expr.CtKeySTATUS, statusDstNAT),
		verdict(expr.VerdictAccept))})
	conn.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: concat(
		matchIf(expr.MetaKeyIIFNAME, outside),
		verdict(expr.VerdictDrop))})

	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables: program table %s: %w", TableName, err)
	}
	return nil
}

// postroutingRules are the source NAT rules, in order: the first NAT rule
// that matches a new flow decides its mapping.
//
//	oifname OUT udp sport 500 snat to ADDR:1024-65535 [fully-random]   ike-port: remap
//	oifname OUT meta l4proto udp snat to ADDR:1024-65535 fully-random   ports: random
//	oifname OUT meta l4proto tcp snat to ADDR:1024-65535 fully-random   ports: random
//	oifname OUT masquerade [fully-random]
//
// A port range is snat to the outside address rather than masquerade, because
// google/nftables v0.3.0 sends no flags with masquerade's port range (so no
// fully-random), and without NF_NAT_RANGE_PROTO_SPECIFIED the kernel ignores
// the range. Masquerade without flags keeps the source port whenever the
// resulting tuple is unique (nf_nat_core's get_unique_tuple), which is
// "preserve"; it also covers what has no ports (ESP, and ICMP's identifiers).
func postroutingRules(c *natconf.Config, outside string, addr netip.Addr) [][]expr.Any {
	random := c.Ports == natconf.PortsRandom
	var rules [][]expr.Any
	if c.IKEPort == natconf.IKEPortRemap {
		rules = append(rules, concat(matchIf(expr.MetaKeyOIFNAME, outside), matchL4(unix.IPPROTO_UDP),
			matchPort(srcPortOffset, 500), snatToRange(addr, random)))
	}
	if random {
		for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			rules = append(rules, concat(matchIf(expr.MetaKeyOIFNAME, outside), matchL4(proto), snatToRange(addr, true)))
		}
	}
	return append(rules, concat(matchIf(expr.MetaKeyOIFNAME, outside), []expr.Any{&expr.Masq{FullyRandom: random}}))
}

// snatToRange is "snat to ADDR:1024-65535 [fully-random]".
func snatToRange(addr netip.Addr, fullyRandom bool) []expr.Any {
	a := addr.As4()
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: a[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(remapPortMin)},
		&expr.Immediate{Register: 3, Data: binaryutil.BigEndian.PutUint16(remapPortMax)},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4,
			RegAddrMin: 1, RegProtoMin: 2, RegProtoMax: 3, Specified: true, FullyRandom: fullyRandom},
	}
}

// statusDstNAT is IPS_DST_NAT from linux/netfilter/nf_conntrack_common.h.
const statusDstNAT = 1 << 5

// Offsets of the ports in the UDP and TCP headers (nft's "th sport/dport").
const srcPortOffset, dstPortOffset = 0, 2

// forwardExprs is: iifname OUT meta l4proto P th dport N dnat to ADDR[:PORT].
func forwardExprs(outside string, f natconf.Forward) []expr.Any {
	proto := byte(unix.IPPROTO_UDP)
	if f.Proto == natconf.TCP {
		proto = unix.IPPROTO_TCP
	}
	to := f.To.Addr().As4()
	nat := &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1}
	load := []expr.Any{&expr.Immediate{Register: 1, Data: to[:]}}
	if p := f.To.Port(); p != 0 {
		load = append(load, &expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(p)})
		nat.RegProtoMin, nat.Specified = 2, true
	}
	return concat(matchIf(expr.MetaKeyIIFNAME, outside), matchL4(proto), matchPort(dstPortOffset, f.Port),
		load, []expr.Any{nat})
}

// matchIf compares the input or output interface's name; the kernel compares
// the full IFNAMSIZ buffer, so the name is NUL-padded as nft pads it.
func matchIf(key expr.MetaKey, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}
}

func matchL4(proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
}

// matchPort compares a port of the transport header; it must follow matchL4
// for UDP or TCP, where both headers keep their ports at the same offsets.
func matchPort(offset uint32, port uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

// matchCtBits is "ct state/status & bits != 0". Conntrack keeps both in host
// byte order.
func matchCtBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: key},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
