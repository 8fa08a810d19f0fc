package linux_test

import (
	"os"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/ipsec/esp/linux"
)

// Open turns accept_local on in the node's namespace (see setAcceptLocal)
// and Close puts the old value back. Where rp_filter is on for all
// interfaces, Open leaves accept_local alone.
func TestOpenRestoresAcceptLocal(t *testing.T) {
	for _, tc := range []struct {
		rpFilter, whileOpen string
	}{
		{"0", "1"},
		{"1", "0"},
		{"2", "0"},
	} {
		t.Run("rp_filter="+tc.rpFilter, func(t *testing.T) {
			_, ns := netenv.Netns(t, "gw")
			sysctl := func(name, set string) string {
				path := "/proc/sys/net/ipv4/conf/all/" + name
				var b []byte
				if err := namespace.RunHandle(ns, func() error {
					if set != "" {
						return os.WriteFile(path, []byte(set), 0)
					}
					var err error
					b, err = os.ReadFile(path)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				return strings.TrimSpace(string(b))
			}
			sysctl("rp_filter", tc.rpFilter)
			if got := sysctl("accept_local", ""); got != "0" {
				t.Fatalf("a new namespace has accept_local %s", got)
			}
			d, err := linux.Open(ns, linux.Config{})
			if err != nil {
				t.Fatal(err)
			}
			if got := sysctl("accept_local", ""); got != tc.whileOpen {
				t.Errorf("with a data plane open, accept_local is %s, want %s", got, tc.whileOpen)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if got := sysctl("accept_local", ""); got != "0" {
				t.Errorf("after Close, accept_local is %s", got)
			}
		})
	}
}

// Close removes the TUN device and the policy-routing rules; Release (a lab's
// destroy) leaves both for the namespace's deletion, which removes all of a
// namespace's devices in one batch.
func TestCloseRemovesReleaseLeaves(t *testing.T) {
	_, ns := netenv.Netns(t, "gw")
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	state := func() (tun bool, rules int) {
		_, err := h.LinkByName("ipsec0")
		rs, rerr := h.RuleList(netlink.FAMILY_V4)
		if rerr != nil {
			t.Fatal(rerr)
		}
		for _, r := range rs {
			if r.Priority == 200 {
				rules++
			}
		}
		return err == nil, rules
	}
	for _, release := range []bool{false, true} {
		d, err := linux.Open(ns, linux.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if tun, rules := state(); !tun || rules == 0 {
			t.Fatalf("open: TUN %v, %d rules", tun, rules)
		}
		if release {
			err = d.Release()
		} else {
			err = d.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		tun, rules := state()
		if release && (!tun || rules == 0) {
			t.Errorf("after Release: TUN %v, %d rules; want both left for the namespace's deletion", tun, rules)
		}
		if !release && (tun || rules != 0) {
			t.Errorf("after Close: TUN %v, %d rules; want none", tun, rules)
		}
	}
}
