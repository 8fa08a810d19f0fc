package esp

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// countingRoutes are routes that count the path MTU lookups and answer
// with mtu.
type countingRoutes struct {
	mu      sync.Mutex
	mtu     int
	lookups int
	routeMT map[netip.Prefix]int
}

func (r *countingRoutes) AddRoute(Policy) error    { return nil }
func (r *countingRoutes) DeleteRoute(Policy) error { return nil }
func (r *countingRoutes) SetRouteMTU(p Policy, mtu int) (int, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := r.routeMT[p.RemoteTS.Prefix] != mtu
	r.routeMT[p.RemoteTS.Prefix] = mtu
	return mtu, changed, nil
}
func (r *countingRoutes) PathMTU(netip.Addr) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups++
	return r.mtu, nil
}
func (r *countingRoutes) MaxPathMTU() int { return 9000 }
func (r *countingRoutes) Close() error    { return nil }

func (r *countingRoutes) state() (lookups, routeMTU int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups, r.routeMT[netip.MustParsePrefix("10.2.0.0/24")]
}

// TestNewSAsShareARecentPathMTU: installing an SA asks the kernel for the
// path MTU toward its peer only when no lookup within pathMTUInterval knows
// it (one negotiation after another made a netlink round trip each), and
// the periodic refresh always asks, so a changed path still reaches the
// route within the interval.
func TestNewSAsShareARecentPathMTU(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	d := New(Config{Now: clock.Now})
	routes := &countingRoutes{mtu: 1500, routeMT: map[netip.Prefix]int{}}
	na, _ := newMemWire("192.0.2.1", "192.0.2.2")
	d.Start(newChanDevice(), na, routes)
	t.Cleanup(func() { d.Close() })
	must(t, d.AddPolicy(Policy{Conn: "a-b", LocalTS: mustTS(t, "10.1.0.0/24"), RemoteTS: mustTS(t, "10.2.0.0/24")}))

	add := func(spi uint32) SAConfig {
		t.Helper()
		out, _ := saPair(t, ProtoESP, Tunnel, EncAESGCM16_128, 0, false, spi)
		must(t, d.AddSA(out))
		return out
	}
	first := add(0x100)
	if n, mtu := routes.state(); n != 1 || mtu == 0 || mtu >= 1500 {
		t.Fatalf("first SA: %d lookups, route MTU %d; want 1 lookup and an MTU under the path's 1500", n, mtu)
	}
	_, before := routes.state()
	must(t, d.DeleteSA(first.ID()))
	second := add(0x200)
	if n, _ := routes.state(); n != 1 {
		t.Fatalf("a second SA toward the same peer at once asked the kernel again: %d lookups", n)
	}

	// The path shrinks; a new SA after the interval sees it.
	routes.mu.Lock()
	routes.mtu = 1400
	routes.mu.Unlock()
	clock.Advance(pathMTUInterval + time.Millisecond)
	must(t, d.DeleteSA(second.ID()))
	add(0x300)
	if n, mtu := routes.state(); n != 2 || mtu != before-100 {
		t.Fatalf("after the interval: %d lookups, route MTU %d; want 2 lookups and MTU %d", n, mtu, before-100)
	}

	// The refresh asks whatever was looked up recently.
	routes.mu.Lock()
	routes.mtu = 1300
	routes.mu.Unlock()
	d.refreshRouteMTUs()
	if n, mtu := routes.state(); n != 3 || mtu != before-200 {
		t.Fatalf("refresh: %d lookups, route MTU %d; want 3 lookups and MTU %d", n, mtu, before-200)
	}
}
