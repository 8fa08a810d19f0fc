package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/labs"
)

// The road-warriors lab deployed: `sas` shows, on the gateway, each
// laptop's XAUTH user and the address Mode Config lent it, and on each
// laptop the address it got; a laptop pings the office from it.
func TestRemoteAccessThroughTheCLI(t *testing.T) {
	testenv.NeedRoot(t)
	netenv.SharedLabs(t)
	src, err := fs.ReadFile(labs.FS(), "road-warriors/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("rwc%d", os.Getpid()%100000)
	body := strings.SplitN(string(src), "\n", 2)[1] // without its name: line
	body = body[:strings.Index(body, "script:")]
	lab := writeLab(t, name, body)
	t.Cleanup(func() { _ = labrun.DestroyLab(name, 10*time.Second) })
	if r := run(t, "deploy", "-t", lab); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	var sas []labrun.SAInfo
	leases := map[string]string{} // node (or user, on the gateway) → address
	deadline := time.Now().Add(15 * time.Second)
	for {
		sas = nil
		_ = json.Unmarshal([]byte(run(t, "sas", "-t", lab, "--json").stdout), &sas)
		clear(leases)
		for _, s := range sas {
			if s.Type == "isakmp" && s.VirtualIP != "" {
				key := s.Node
				if s.Node == "gw" {
					key = "gw:" + s.XAuthUser
				}
				leases[key] = s.VirtualIP
			}
		}
		if len(leases) == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leases after 15 s: %v", leases)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for laptop, user := range map[string]string{"laptop1": "alice", "laptop2": "bob", "laptop3": "carol"} {
		if leases[laptop] == "" || leases[laptop] != leases["gw:"+user] {
			t.Errorf("%s holds %q, the gateway lent %s %q", laptop, leases[laptop], user, leases["gw:"+user])
		}
	}
	if r := run(t, "sas", "-t", lab); !strings.Contains(r.stdout, "("+leases["laptop2"]+", bob)") {
		t.Errorf("the table does not show bob's lease:\n%s", r.stdout)
	}
	if r := run(t, "ping", "-t", lab, "laptop2", "10.1.0.10", "-c", "2", "-i", "100ms"); r.code != 0 || !strings.Contains(r.stdout, " 0% packet loss") {
		t.Errorf("ping from laptop2: %+v", r)
	}
}
