package esp

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// A received batch whose HMAC-SHA1 ICVs are checked ahead, two at a time,
// gives packet for packet the outcome of the same batch checked one packet
// at a time: accepted with the same inner packet, or dropped for the same
// reason. The batch mixes two HMAC-SHA1 SAs (one with ESN across the 32-bit
// boundary), an HMAC-SHA256 SA that does not pair, a GCM SA, a tampered
// packet, a duplicate, a packet for an unknown SPI and one that is not ESP.
func TestICVsCheckedAhead(t *testing.T) {
	for _, encap := range []bool{false, true} {
		t.Run(fmt.Sprintf("encap=%v", encap), func(t *testing.T) {
			type saSpec struct {
				enc   EncAlg
				integ IntegAlg
				esn   bool
				spi   uint32
			}
			specs := []saSpec{
				{EncAESCBC128, IntegHMACSHA1_96, true, 0x1001},
				{EncAESCBC256, IntegHMACSHA1_96, false, 0x1002},
				{EncAESCBC128, IntegHMACSHA256_128, false, 0x1003},
				{EncAESGCM16_128, IntegNone, false, 0x1004},
			}
			var outs []*saState
			var ins []SAConfig
			for _, s := range specs {
				oc, ic := saPair(t, ProtoESP, Tunnel, s.enc, s.integ, encap, s.spi)
				oc.ESN, ic.ESN = s.esn, s.esn
				out := mustSA(t, oc)
				if s.esn {
					out.seq.Store(1<<32 - 5)
				}
				outs = append(outs, out)
				ins = append(ins, ic)
			}
			var batch [][]byte
			for i := range 12 {
				size := 1300
				if i%5 == 4 {
					size = 200 + i
				}
				batch = append(batch, protectPacket(t, outs[i%len(outs)], icmpEcho("10.1.0.5", "10.2.0.7", uint32(i), size)))
				if i%3 == 0 {
					batch = append(batch, protectPacket(t, outs[0], icmpEcho("10.1.0.5", "10.2.0.7", uint32(100+i), 1300)))
				}
			}
			tampered := protectPacket(t, outs[1], icmpEcho("10.1.0.5", "10.2.0.7", 99, 1300))
			tampered[len(tampered)-30] ^= 0x40
			batch = append(batch, tampered, bytes.Clone(batch[0]), bytes.Clone(batch[1]))
			stranger, _ := saPair(t, ProtoESP, Tunnel, EncAESCBC128, IntegHMACSHA1_96, encap, 0x9999)
			unknown := protectPacket(t, mustSA(t, stranger), icmpEcho("10.1.0.5", "10.2.0.7", 1, 100))
			batch = append(batch, unknown, []byte{0xff})
			if !encap {
				batch[len(batch)-1] = icmpEcho("192.0.2.2", "192.0.2.1", 1, 40) // not ESP
			}

			type outcome struct {
				ok    bool
				inner []byte
			}
			type counters struct {
				Stats
				SAs []SAStatus
			}
			run := func(ahead bool) ([]outcome, counters, int) {
				d := New(Config{})
				defer d.Close()
				for _, ic := range ins {
					must(t, d.AddSA(ic))
				}
				a := newICVAhead(len(batch))
				pkts := make([][]byte, len(batch))
				for i, p := range batch {
					pkts[i] = bytes.Clone(p)
				}
				checked := 0
				if ahead {
					a.check(d, pkts, encap)
					for i := range pkts {
						if a.verdict(i).sa != nil {
							checked++
						}
					}
				}
				var res []outcome
				for i, p := range pkts {
					var v *icvVerdict
					if ahead {
						v = a.verdict(i)
					}
					buf := make([]byte, Headroom+len(p))
					var p0, p1 int
					var ok bool
					if encap {
						p0, p1, ok = d.inboundUDP(p, netip.MustParseAddrPort("192.0.2.1:4500"), buf, v)
					} else {
						p0, p1, ok = d.inboundIP(p, buf, v)
					}
					res = append(res, outcome{ok, bytes.Clone(buf[p0:p1])})
				}
				sas := d.SAs()
				for i := range sas {
					sas[i].Installed = time.Time{}
				}
				return res, counters{d.Stats(), sas}, checked
			}
			want, wantStats, _ := run(false)
			got, gotStats, checked := run(true)
			for i := range want {
				if got[i].ok != want[i].ok || !bytes.Equal(got[i].inner, want[i].inner) {
					t.Errorf("packet %d: checked ahead ok=%v, one at a time ok=%v", i, got[i].ok, want[i].ok)
				}
			}
			if fmt.Sprintf("%+v", gotStats) != fmt.Sprintf("%+v", wantStats) {
				t.Errorf("counters differ:\n ahead %+v\n alone %+v", gotStats, wantStats)
			}
			if wantStats.UnknownSPI != 1 {
				t.Errorf("%d packets of an unknown SPI, want 1", wantStats.UnknownSPI)
			}
			var integrity, replay uint64
			for _, s := range wantStats.SAs {
				integrity += s.Counters.IntegrityFailures
				replay += s.Counters.ReplayDrops
			}
			if integrity != 1 || replay != 2 {
				t.Errorf("%d integrity failures and %d replays, want 1 and 2", integrity, replay)
			}
			// The HMAC-SHA1 and -SHA256 packets: 3 of each of three SAs, 4 more
			// of the first, the tampered one and the two duplicates, but for the
			// one numbered 2^32: the window, not yet moved by this batch, infers
			// it as 0, a replay, so it is left to SA.unprotect. The two after it
			// are checked ahead as 1 and 2, and SA.unprotect, which infers
			// 2^32+1 and 2^32+2, computes theirs again. 15, seven pairs.
			if checked != 14 {
				t.Errorf("%d packets checked ahead, want 14", checked)
			}
		})
	}
}

// The paired ICV paths run for every packet: like the rest of the data path
// they must not allocate (an ICV array that escaped to the heap once cost an
// allocation per pair).
func TestPairedICVsDoNotAllocate(t *testing.T) {
	oc, ic := saPair(t, ProtoESP, Tunnel, EncAESCBC128, IntegHMACSHA1_96, false, 0x5005)
	out := mustSA(t, oc)
	d := New(Config{})
	defer d.Close()
	must(t, d.AddSA(ic))
	var pkts [][]byte
	for i := range 8 {
		pkts = append(pkts, protectPacket(t, out, icmpEcho("10.1.0.5", "10.2.0.7", uint32(i), 1300)))
	}
	a := newICVAhead(len(pkts))
	if n := testing.AllocsPerRun(50, func() { a.check(d, pkts, false) }); n != 0 {
		t.Errorf("checking a batch's ICVs ahead: %v allocations", n)
	}
	if a.verdict(0).sa == nil || !a.verdict(0).ok {
		t.Fatal("the batch was not checked ahead")
	}

	var jobs sealJobs
	bufs := make([][]byte, 4)
	inner := icmpEcho("10.1.0.5", "10.2.0.7", 1, 1300)
	for i := range bufs {
		bufs[i] = make([]byte, Headroom+len(inner)+Tailroom)
	}
	if n := testing.AllocsPerRun(50, func() {
		for _, buf := range bufs {
			copy(buf[Headroom:], inner)
			if _, _, _, r := out.protectLater(&jobs, buf, Headroom, Headroom+len(inner)); r != dropNone {
				t.Fatal(r)
			}
		}
		jobs.run()
	}); n != 0 {
		t.Errorf("sealing a batch with paired ICVs: %v allocations", n)
	}
}
