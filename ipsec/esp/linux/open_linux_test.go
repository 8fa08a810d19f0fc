package linux_test

import (
	"os"
	"strings"
	"testing"

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
