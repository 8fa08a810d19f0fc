package stack_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/ike"
	"github.com/ipseclab/ipseclab/ipsec/stack/sim"
)

// counterSnapshot flattens a node's Stats as `ipseclab stats` reads them
// (labrun.CountersOf): through their JSON, each nested object a group, the
// other fields the group "stack", deeper objects named by their path. Every
// counter there is, today's and those added later, is in it; a value that is
// not a number is no counter and is left out.
func counterSnapshot(t testing.TB, n *gw) map[string]float64 {
	t.Helper()
	data, err := json.Marshal(n.stack.Stats())
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(prefix+"."+k, x)
			}
		case float64:
			out[prefix] = v
		}
	}
	for k, v := range top {
		if _, ok := v.(map[string]any); ok {
			walk(k, v)
		} else {
			walk("stack."+k, v)
		}
	}
	return out
}

// moved lists the counters that differ between two snapshots, with by how
// much.
func moved(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	for k, v := range before {
		if _, ok := after[k]; !ok {
			out[k] = -v
		}
	}
	return out
}

func describeMoves(m map[string]float64) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %+g", k, v))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// withIPv4 rewrites an IPv4 packet's source address and total length and
// recomputes its header checksum, as a sender of such a packet would have.
func withIPv4(pkt []byte, src netip.Addr, total int) []byte {
	p := bytes.Clone(pkt[:total])
	if src.IsValid() {
		s := src.As4()
		copy(p[12:16], s[:])
	}
	binary.BigEndian.PutUint16(p[2:], uint16(total))
	p[10], p[11] = 0, 0
	ihl := int(p[0]&0x0f) * 4
	var sum uint32
	for i := 0; i < ihl; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(p[10:], ^uint16(sum))
	return p
}

// TestEveryDropMovesOneCounter: each kind of bad packet a gateway meets
// moves exactly one of its counters, by one, the one named for what was
// wrong, and no other drop counter: what `ipseclab stats` shows tells an
// engineer which kind of packet was dropped, and none goes uncounted. The
// bad packets are B's own ESP from A, replayed, held back and altered, and
// junk on B's NAT-T port; between them B still carries traffic.
func TestEveryDropMovesOneCounter(t *testing.T) {
	for _, suite := range []string{"aes128gcm16", "aes128-sha256"} {
		t.Run(suite, func(t *testing.T) {
			w := newWorld(t)
			ca, cb := connPair(t, ike.MainMode, "aes128-sha256-modp2048", suite)
			const window = 32
			ca.Child.ReplayWindow, cb.Child.ReplayWindow = window, window
			a, b := w.pair(ca, cb, nil)
			up(t, a, b)

			// Every ESP packet from A to B is kept; while hold is set it is
			// also kept from B, so that B has never seen its sequence number
			// and checks it in full.
			var mu sync.Mutex
			var esp [][]byte
			hold := false
			w.net.SetFilter(func(d *sim.Datagram) bool {
				if d.Proto != sim.ProtoESP || d.Dst.Addr() != addrB {
					return true
				}
				mu.Lock()
				defer mu.Unlock()
				esp = append(esp, bytes.Clone(d.Data))
				return !hold
			})
			captured := func() [][]byte { mu.Lock(); defer mu.Unlock(); return append([][]byte(nil), esp...) }

			// Enough delivered that the first falls out of the replay window.
			for i := range window + 8 {
				sendThrough(t, a, b, hostA, hostB, fmt.Sprintf("delivered %d", i))
			}
			delivered := captured()
			mu.Lock()
			hold = true
			mu.Unlock()
			for i := range 5 {
				a.host.TUN().Send(sim.UDPPacket(hostA, hostB, []byte(fmt.Sprintf("held %d", i))))
			}
			eventually(t, "A's held packets", func() bool { return len(captured()) == len(delivered)+5 })
			fresh := captured()[len(delivered):]
			mu.Lock()
			hold = false
			mu.Unlock()

			const ihl = 20 // A sends no IP options
			flipped := bytes.Clone(fresh[0])
			flipped[len(flipped)-20] ^= 0x10 // in the ciphertext, just before the 16-byte ICV
			unknownSPI := bytes.Clone(fresh[1])
			unknownSPI[ihl] ^= 0xff
			esp4500 := func(data []byte) sim.Datagram {
				return sim.Datagram{Src: netip.MustParseAddrPort("198.51.100.77:4500"), Dst: netip.AddrPortFrom(addrB, 4500), Proto: sim.ProtoUDP, Data: data}
			}
			fromA := func(pkt []byte) sim.Datagram {
				return sim.Datagram{Src: netip.AddrPortFrom(addrA, 0), Dst: netip.AddrPortFrom(addrB, 0), Proto: sim.ProtoESP, Data: pkt}
			}
			wrongSource := netip.MustParseAddr("192.0.2.99")
			cases := []struct {
				name    string
				d       sim.Datagram
				counter string
				also    []string // traffic counters, not drops, that move with it
			}{
				{"replay", fromA(delivered[len(delivered)-1]), "data_plane.replay_drops", nil},
				{"out of window", fromA(delivered[0]), "data_plane.replay_drops", nil},
				{"flipped bit", fromA(flipped), "data_plane.integrity_failures", nil},
				// B shares an ISAKMP SA with A, so it tells A (INVALID-SPI).
				{"unknown SPI", fromA(unknownSPI), "data_plane.unknown_spi", []string{"ike.invalid_spi_sent", "ike.sent"}},
				{"truncated after the ESP header", fromA(withIPv4(fresh[2], netip.Addr{}, ihl+8+4)), "data_plane.sa_malformed", nil},
				{"truncated in the ESP header", fromA(withIPv4(fresh[2], netip.Addr{}, ihl+6)), "data_plane.malformed", nil},
				{"wrong source", sim.Datagram{Src: netip.AddrPortFrom(wrongSource, 0), Dst: netip.AddrPortFrom(addrB, 0), Proto: sim.ProtoESP,
					Data: withIPv4(fresh[3], wrongSource, len(fresh[3]))}, "data_plane.policy_drops", nil},
				{"garbage on UDP 4500, too short for ESP", esp4500([]byte{1, 2, 3}), "data_plane.malformed", nil},
				{"garbage on UDP 4500, read as ESP", esp4500(bytes.Repeat([]byte{0x5a}, 40)), "data_plane.unknown_spi", nil},
				{"garbage on UDP 4500, marked as IKE", esp4500([]byte{0, 0, 0, 0, 1}), "ike.malformed", []string{"data_plane.ike_received", "ike.received"}},
			}
			for _, c := range cases {
				before := counterSnapshot(t, b)
				w.net.Inject(c.d)
				eventually(t, c.name+" counted in "+c.counter, func() bool { return counterSnapshot(t, b)[c.counter] > before[c.counter] })
				time.Sleep(20 * time.Millisecond) // for a second counter, if any, to move too
				got := moved(before, counterSnapshot(t, b))
				want := map[string]float64{c.counter: 1}
				for _, k := range c.also {
					want[k] = 1
				}
				if describeMoves(got) != describeMoves(want) {
					t.Errorf("%s: moved %s; want %s", c.name, describeMoves(got), describeMoves(want))
				}
			}
			// The SA's own counters have the drops too, which `sas` shows.
			for _, s := range b.installed() {
				if s.In.ReplayDrops != 2 || s.In.IntegrityFailures != 1 || s.In.PolicyDrops != 1 || s.In.OtherDrops != 1 {
					t.Errorf("B's inbound SA counted %+v; want 2 replays, 1 integrity failure, 1 policy drop, 1 other", s.In)
				}
			}
			sendThrough(t, a, b, hostA, hostB, "after the bad packets")
		})
	}
}
