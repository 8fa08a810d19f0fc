package labrun

import (
	"bytes"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

// BenchmarkIKEEventLine: what the plaintext an ike-message event carries
// for the web view's inspector (events.IKEInfo.Plain) costs the event
// stream: encoding the line in the lab process and decoding it in `run`,
// for a Main Mode 1/6 as ipseclab sends it (an SA with one proposal and
// five vendor IDs: 228 bytes), with and without the bytes.
func BenchmarkIKEEventLine(b *testing.B) {
	e := events.Event{Seq: 12345, Time: time.Now(), Lab: "neg1", Node: "gw-a", Conn: "office", Kind: events.IKEMessage,
		Step: events.StepPhase1, Level: events.Info, Message: "→ Main Mode 1/6 sent to 203.0.113.2:500: HDR, SA, VID, VID, VID, VID, VID",
		Explain: "Main Mode 1/6: the initiator offers its proposals for the ISAKMP SA; nothing is secret yet.",
		IKE: &events.IKEInfo{Exchange: "main", MsgNum: 1, MsgTotal: 6, Dir: events.Sent, Local: "198.51.100.2:500", Remote: "203.0.113.2:500",
			ICookie: "629749ab2b2224f6", RCookie: "0000000000000000", Payloads: []string{"SA", "VID", "VID", "VID", "VID", "VID"}, Size: 228, Role: "initiator"}}
	for _, with := range []bool{false, true} {
		name := "without"
		if with {
			name = "with-plain"
			e.IKE.Plain = bytes.Repeat([]byte{0xa5}, 228)
		}
		b.Run(name, func(b *testing.B) {
			var buf bytes.Buffer
			var d events.Event
			for range b.N {
				buf.Reset()
				if err := encodeEventLine(&buf, &e); err != nil {
					b.Fatal(err)
				}
				if err := decodeEventLine(buf.Bytes(), &d); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(buf.Len()), "bytes/line")
		})
	}
}
