package strongswan

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/strongswan/govici/vici"
)

// PoolStatus is one address pool as vici's get-pools reports it: how many
// addresses it has, how many are lent, and to whom.
type PoolStatus struct {
	Name    string
	Base    netip.Addr // the first address charon counts from
	Size    uint32     // addresses it can lend
	Online  uint32     // leases held by an IKE SA now
	Offline uint32     // leases whose IKE SA is gone; kept for the identity's return
	Leases  []Lease
}

// Lease is one address a pool lent.
type Lease struct {
	Addr netip.Addr
	// Identity is whom the address is for: with XAUTH the user name (the
	// client's "EAP identity" in charon's words), else its IKE identity.
	// charon gives the same identity the same address again.
	Identity string
	Online   bool
}

// Pools returns charon's address pools with their leases.
func (c *Charon) Pools(ctx context.Context) ([]PoolStatus, error) {
	s, err := vici.NewSession(vici.WithSocketPath(c.ViciSocket()))
	if err != nil {
		return nil, fmt.Errorf("strongswan: vici: %w", err)
	}
	defer s.Close()
	m, err := s.Call(ctx, "get-pools", request("leases", "yes"))
	if err != nil {
		return nil, fmt.Errorf("strongswan: get-pools: %w", err)
	}
	return parsePools(m)
}

func parsePools(m *vici.Message) ([]PoolStatus, error) {
	var pools []PoolStatus
	for _, name := range m.Keys() {
		sec, ok := m.Get(name).(*vici.Message)
		if !ok {
			continue
		}
		f := &fields{m: sec}
		p := PoolStatus{
			Name:    name,
			Size:    uint32(f.uint("size", 32)),
			Online:  uint32(f.uint("online", 32)),
			Offline: uint32(f.uint("offline", 32)),
		}
		p.Base = f.addr("base")
		leases, _ := sec.Get("leases").(*vici.Message)
		for _, key := range childKeys(leases) {
			g := &fields{m: leases.Get(key).(*vici.Message)}
			p.Leases = append(p.Leases, Lease{Addr: g.addr("address"), Identity: g.str("identity"), Online: g.str("status") == "online"})
			if g.err != nil && f.err == nil {
				f.err = fmt.Errorf("lease %s: %w", key, g.err)
			}
		}
		if f.err != nil {
			return pools, fmt.Errorf("strongswan: get-pools: pool %s: %w", name, f.err)
		}
		pools = append(pools, p)
	}
	return pools, nil
}
