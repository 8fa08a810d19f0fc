package nat

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Mapping is one translation the NAT is holding: a conntrack entry whose
// addresses or ports the NAT rewrote.
type Mapping struct {
	// ID is conntrack's id of the entry; a new mapping for the same hosts has
	// a new one.
	ID uint32
	// Proto is "udp", "tcp", "icmp", "esp", or "proto N".
	Proto string
	// Forwarded is true for a declared forward (DNAT), where the first packet
	// came from the outside, and false for masquerade, where it came from the
	// inside.
	Forwarded bool
	// Inside is the host behind the NAT; Outside is what the outside world
	// sees instead: the NAT's address and the mapped port; Remote is the peer
	// on the outside. Ports are zero for protocols without ports (ESP). For
	// ICMP they hold the echo identifier, which the NAT maps like a port.
	Inside, Outside, Remote netip.AddrPort
	// Age is the time since the mapping's first packet (zero if unknown).
	Age time.Duration
	// TimeLeft is how long the mapping lives if no further packet refreshes
	// it.
	TimeLeft time.Duration
	// State is conntrack's view: for TCP its state ("established",
	// "time_wait"...), otherwise "unreplied", "replied" or "assured" (replied
	// and lasting, which gives UDP the stream timeout).
	State string
}

// PortChanged reports whether the NAT gave the mapping another port than the
// inside host used (what NAT-D reveals together with the address).
func (m Mapping) PortChanged() bool { return m.Inside.Port() != m.Outside.Port() }

// String renders the mapping on one line, in the direction the first packet
// travelled: "udp 192.168.1.10:500 → 198.51.100.2:500 → 203.0.113.2:500" for
// masquerade, "udp 192.168.1.10:500 ← 198.51.100.2:500 ← 203.0.113.2:500
// (forward)" for a forward.
func (m Mapping) String() string {
	if m.Forwarded {
		return fmt.Sprintf("%s %s ← %s ← %s (forward)", m.Proto, endpoint(m.Inside), endpoint(m.Outside), endpoint(m.Remote))
	}
	return fmt.Sprintf("%s %s → %s → %s", m.Proto, endpoint(m.Inside), endpoint(m.Outside), endpoint(m.Remote))
}

// fields are the event fields that describe the mapping.
func (m Mapping) fields() map[string]any {
	return map[string]any{
		"conntrack_id": m.ID,
		"proto":        m.Proto,
		"forwarded":    m.Forwarded,
		"inside":       endpoint(m.Inside),
		"outside":      endpoint(m.Outside),
		"remote":       endpoint(m.Remote),
		"port_changed": m.PortChanged(),
		"state":        m.State,
	}
}

// endpoint prints address:port, or the address alone for protocols without ports.
func endpoint(ap netip.AddrPort) string {
	if ap.Port() == 0 {
		return ap.Addr().String()
	}
	return ap.String()
}

// parseEndpoint reads what endpoint prints.
func parseEndpoint(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is neither address:port nor an address", s)
	}
	return netip.AddrPortFrom(a, 0), nil
}

// mappingJSON is a mapping as `nat show --json` and the lab's control socket
// write it: in the lab file's words (kebab-case keys, durations with their
// unit, endpoints as the table prints them), not Go's.
type mappingJSON struct {
	ID        uint32 `json:"id"`
	Proto     string `json:"proto"`
	Forwarded bool   `json:"forwarded"`
	Inside    string `json:"inside"`
	Outside   string `json:"outside"`
	Remote    string `json:"remote"`
	Age       string `json:"age"`
	TimeLeft  string `json:"time-left"`
	State     string `json:"state"`
}

// MarshalJSON writes the mapping as in {"proto": "udp", "inside":
// "192.168.1.10:500", "age": "12.5s", "time-left": "29s", ...}.
func (m Mapping) MarshalJSON() ([]byte, error) {
	return json.Marshal(mappingJSON{
		ID: m.ID, Proto: m.Proto, Forwarded: m.Forwarded,
		Inside: endpoint(m.Inside), Outside: endpoint(m.Outside), Remote: endpoint(m.Remote),
		Age: m.Age.Round(time.Millisecond).String(), TimeLeft: m.TimeLeft.String(), State: m.State,
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (m *Mapping) UnmarshalJSON(b []byte) error {
	var j mappingJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	out := Mapping{ID: j.ID, Proto: j.Proto, Forwarded: j.Forwarded, State: j.State}
	var err error
	for _, f := range []struct {
		dst *netip.AddrPort
		s   string
	}{{&out.Inside, j.Inside}, {&out.Outside, j.Outside}, {&out.Remote, j.Remote}} {
		if *f.dst, err = parseEndpoint(f.s); err != nil {
			return fmt.Errorf("nat mapping: %w", err)
		}
	}
	for _, f := range []struct {
		dst *time.Duration
		s   string
	}{{&out.Age, j.Age}, {&out.TimeLeft, j.TimeLeft}} {
		if *f.dst, err = time.ParseDuration(f.s); err != nil {
			return fmt.Errorf("nat mapping: %w", err)
		}
	}
	*m = out
	return nil
}

// show lists the mappings the NAT in the namespace holds, read from conntrack
// over netlink, sorted by inside endpoint.
func show(ns netns.NsHandle) ([]Mapping, error) {
	c, err := dialConntrack(ns)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	flows, err := c.Dump(nil)
	if err != nil {
		return nil, fmt.Errorf("conntrack: dump: %w", err)
	}
	return mappingsOf(flows, time.Now()), nil
}

// mappingsOf reads a dump. An entry marked dying is left out: the kernel
// reports its destroy event before it unlinks the entry, so a dump can still
// walk past a mapping already announced gone, and a watcher that lost that
// event and reconciles with the dump would keep the mapping for ever.
func mappingsOf(flows []conntrack.Flow, now time.Time) []Mapping {
	var out []Mapping
	for i := range flows {
		if flows[i].Status.Dying() {
			continue
		}
		if m, ok := mappingOf(&flows[i], now); ok {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b Mapping) int {
		return cmp.Or(a.Inside.Compare(b.Inside), a.Remote.Compare(b.Remote), cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func dialConntrack(ns netns.NsHandle) (*conntrack.Conn, error) {
	c, err := conntrack.Dial(&netlink.Config{NetNS: int(ns)})
	if err != nil {
		return nil, fmt.Errorf("conntrack: open netlink socket in the NAT's namespace: %w", err)
	}
	return c, nil
}

// mappingOf reads a conntrack entry as a NAT mapping. Entries the NAT did not
// rewrite (the box's own traffic, routed IPv6) are not mappings.
//
// Conntrack keeps two tuples: the original direction as the first packet
// arrived, and the reply direction as replies must look after translation.
// For masquerade the original is inside → remote and the reply is
// remote → outside; for a forward the original is remote → outside and the
// reply is inside → remote.
func mappingOf(f *conntrack.Flow, now time.Time) (Mapping, bool) {
	if !f.Status.SrcNAT() && !f.Status.DstNAT() {
		return Mapping{}, false
	}
	orig, reply := f.TupleOrig, f.TupleReply
	m := Mapping{
		ID:       f.ID,
		Proto:    protoName(orig.Proto.Protocol),
		TimeLeft: time.Duration(f.Timeout) * time.Second,
		State:    stateOf(f),
	}
	if f.Status.DstNAT() {
		m.Forwarded = true
		m.Remote = srcOf(orig)
		m.Outside = dstOf(orig)
		m.Inside = srcOf(reply)
	} else {
		m.Inside = srcOf(orig)
		m.Remote = dstOf(orig)
		m.Outside = dstOf(reply)
	}
	if start := f.Timestamp.Start; !start.IsZero() {
		end := now
		if stop := f.Timestamp.Stop; !stop.IsZero() {
			end = stop
		}
		m.Age = max(end.Sub(start), 0)
	}
	return m, true
}

func srcOf(t conntrack.Tuple) netip.AddrPort {
	return netip.AddrPortFrom(t.IP.SourceAddress, portOf(t.Proto, t.Proto.SourcePort))
}

func dstOf(t conntrack.Tuple) netip.AddrPort {
	return netip.AddrPortFrom(t.IP.DestinationAddress, portOf(t.Proto, t.Proto.DestinationPort))
}

// portOf is the port, or for ICMP the echo identifier (both ends of an ICMP
// tuple carry the same one).
func portOf(p conntrack.ProtoTuple, port uint16) uint16 {
	if p.Protocol == unix.IPPROTO_ICMP || p.Protocol == unix.IPPROTO_ICMPV6 {
		return p.ICMPID
	}
	return port
}

var protoNames = map[uint8]string{
	unix.IPPROTO_ICMP:   "icmp",
	unix.IPPROTO_TCP:    "tcp",
	unix.IPPROTO_UDP:    "udp",
	unix.IPPROTO_GRE:    "gre",
	unix.IPPROTO_ESP:    "esp",
	unix.IPPROTO_AH:     "ah",
	unix.IPPROTO_ICMPV6: "icmpv6",
	unix.IPPROTO_SCTP:   "sctp",
}

func protoName(p uint8) string {
	if n, ok := protoNames[p]; ok {
		return n
	}
	return fmt.Sprintf("proto %d", p)
}

// tcpStates are conntrack's TCP states (enum tcp_conntrack in
// linux/netfilter/nf_conntrack_tcp.h).
var tcpStates = [...]string{"none", "syn_sent", "syn_recv", "established", "fin_wait", "close_wait", "last_ack", "time_wait", "close", "syn_sent2"}

func stateOf(f *conntrack.Flow) string {
	if tcp := f.ProtoInfo.TCP; tcp != nil && int(tcp.State) < len(tcpStates) {
		return tcpStates[tcp.State]
	}
	switch {
	case f.Status.Assured():
		return "assured"
	case f.Status.SeenReply():
		return "replied"
	}
	return "unreplied"
}
