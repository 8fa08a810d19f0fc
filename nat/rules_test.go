package nat

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/nat/natconf"
)

// portRange returns the port range and the l4 protocol of a source NAT rule,
// or ok false for a rule without a range (masquerade).
func portRange(rule []expr.Any) (proto byte, min, max uint16, fullyRandom, ok bool) {
	regs := map[uint32][]byte{}
	for i, e := range rule {
		switch e := e.(type) {
		case *expr.Meta:
			if e.Key == expr.MetaKeyL4PROTO {
				if cmp, isCmp := rule[i+1].(*expr.Cmp); isCmp {
					proto = cmp.Data[0]
				}
			}
		case *expr.Immediate:
			regs[e.Register] = e.Data
		case *expr.NAT:
			if e.Type != expr.NATTypeSourceNAT || !e.Specified {
				return 0, 0, 0, false, false
			}
			return proto, binary.BigEndian.Uint16(regs[e.RegProtoMin]), binary.BigEndian.Uint16(regs[e.RegProtoMax]), e.FullyRandom, true
		}
	}
	return 0, 0, 0, false, false
}

// ports: random draws UDP and TCP ports from the unprivileged range, as a
// Linux NAT given a range does; without one the kernel maps port 500 below 512.
func TestRandomPortsRuleUsesTheUnprivilegedRange(t *testing.T) {
	addr := netip.MustParseAddr("198.51.100.2")
	for _, c := range []natconf.Config{{Ports: natconf.PortsRandom}, {Ports: natconf.PortsRandom, IKEPort: natconf.IKEPortRemap}} {
		rules := postroutingRules(&c, "eth1", addr)
		protos := map[byte]bool{}
		for _, r := range rules {
			proto, lo, hi, random, ok := portRange(r)
			if !ok {
				continue
			}
			if lo != 1024 || hi != 65535 || !random {
				t.Errorf("%+v: snat to %d-%d fully-random=%v, want 1024-65535 fully random", c, lo, hi, random)
			}
			protos[proto] = true
		}
		if !protos[unix.IPPROTO_UDP] || !protos[unix.IPPROTO_TCP] {
			t.Errorf("%+v: no unprivileged range for udp and tcp: %v", c, protos)
		}
		if _, isMasq := rules[len(rules)-1][len(rules[len(rules)-1])-1].(*expr.Masq); !isMasq {
			t.Errorf("%+v: the last rule is not the masquerade that covers the rest", c)
		}
	}
	// ports: preserve keeps the inside port: only masquerade, without flags.
	rules := postroutingRules(&natconf.Config{}, "eth1", addr)
	if len(rules) != 1 {
		t.Fatalf("ports: preserve has %d source NAT rules, want masquerade alone", len(rules))
	}
	if m, ok := rules[0][len(rules[0])-1].(*expr.Masq); !ok || m.FullyRandom {
		t.Errorf("ports: preserve: %#v", rules[0][len(rules[0])-1])
	}
}
