package nat

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ti-mo/conntrack"
)

// A dump can walk past an entry whose destroy event the kernel has already
// sent (it reports the event, then unlinks the entry): such an entry is no
// mapping, or a watcher reconciling after lost events would keep it alive.
func TestDumpLeavesOutDyingEntries(t *testing.T) {
	in, remote, outside := netip.MustParseAddr("10.0.0.10"), netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.2")
	flow := func(id uint32, status conntrack.Status) conntrack.Flow {
		f := conntrack.NewFlow(17, status, in, remote, 40000, 500, 30, 0)
		f.ID = id
		f.TupleReply.IP.DestinationAddress = outside
		return f
	}
	nat := conntrack.StatusConfirmed | conntrack.StatusSrcNAT | conntrack.StatusSrcNATDone
	ms := mappingsOf([]conntrack.Flow{
		flow(1, nat),
		flow(2, nat|conntrack.StatusDying),
		flow(3, conntrack.StatusConfirmed), // not translated: not a mapping
	}, time.Now())
	if len(ms) != 1 || ms[0].ID != 1 {
		t.Fatalf("mappings %+v, want only entry 1", ms)
	}
	// A destroy event's entry is dying too, and is still read as the
	// mapping that ends.
	f := flow(2, nat|conntrack.StatusDying)
	if m, ok := mappingOf(&f, time.Now()); !ok || m.ID != 2 || m.Outside.Addr() != outside {
		t.Fatalf("destroy event read as %+v, %v", m, ok)
	}
}
