package vpnc

import (
	"context"
	"crypto/x509"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

func laptop() Config {
	return Config{
		Gateway:     netip.MustParseAddr("203.0.113.2"),
		GroupID:     "lab",
		GroupSecret: `group "secret"`,
		Username:    "alice",
		Password:    "alice password",
		DHGroup:     "dh14",
		PFS:         "nopfs",
	}
}

func TestConf(t *testing.T) {
	conf, err := laptop().Conf("/state/vpnc-script", "/state/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"# Written by ipseclab for vpnc(8).",
		"IPSec gateway 203.0.113.2",
		"IPSec ID lab",
		`IPSec secret group "secret"`,
		"Xauth username alice",
		"Xauth password alice password",
		"IKE DH Group dh14",
		"Perfect Forward Secrecy nopfs",
		"Interface name vpnc0",
		"Interface mode tun",
		"Script /state/vpnc-script",
		"Noninteractive",
	}, "\n") + "\n"
	if conf != want {
		t.Errorf("vpnc.conf:\n%s\nwant:\n%s", conf, want)
	}

	c := laptop()
	c.Hybrid, c.CACerts = true, []*x509.Certificate{{Raw: []byte{1}}}
	c.NATT, c.LocalPort, c.DPDIdle, c.Interface = "force-natt", -1, -1, "tun7"
	c.TargetNetwork = netip.MustParsePrefix("10.1.0.0/24")
	conf, err = c.Conf("/s", "/state/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"IKE Authmode hybrid", "CA-File /state/ca.pem", "NAT Traversal Mode force-natt", "Local Port 0",
		"DPD idle timeout (our side) 0", "Interface name tun7", "IPSEC target network 10.1.0.0/24"} {
		if !strings.Contains(conf, line+"\n") {
			t.Errorf("vpnc.conf lacks %q:\n%s", line, conf)
		}
	}
}

func TestValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*Config)
		want   string
	}{
		"no gateway":        {func(c *Config) { c.Gateway = netip.Addr{} }, "IPv4"},
		"IPv6 gateway":      {func(c *Config) { c.Gateway = netip.MustParseAddr("2001:db8::1") }, "IPv4"},
		"no group":          {func(c *Config) { c.GroupID = "" }, "group ID is empty"},
		"no password":       {func(c *Config) { c.Password = "" }, "password is empty"},
		"newline":           {func(c *Config) { c.Password = "a\nIPSec gateway 1.2.3.4" }, "control character"},
		"leading blank":     {func(c *Config) { c.GroupSecret = " s" }, "blank"},
		"trailing blank":    {func(c *Config) { c.Username = "alice " }, "blank"},
		"bad NAT-T":         {func(c *Config) { c.NATT = "cisco-tcp" }, "NAT Traversal Mode"},
		"ecp group":         {func(c *Config) { c.DHGroup = "dh19" }, "IKE DH Group"},
		"bad pfs":           {func(c *Config) { c.PFS = "modp2048" }, "Perfect Forward Secrecy"},
		"long interface":    {func(c *Config) { c.Interface = "a-very-long-tun-name" }, "15 bytes"},
		"short dpd":         {func(c *Config) { c.DPDIdle = 5 * time.Second }, "DPD"},
		"hybrid without ca": {func(c *Config) { c.Hybrid = true }, "CA certificate"},
		"ca without hybrid": {func(c *Config) { c.CACerts = []*x509.Certificate{{Raw: []byte{1}}} }, "only Hybrid"},
		"host bits":         {func(c *Config) { c.TargetNetwork = netip.MustParsePrefix("10.1.0.1/24") }, "target network"},
		"server pfs":        {func(c *Config) { c.PFS = "server" }, ""},
		"random port":       {func(c *Config) { c.LocalPort = -1 }, ""},
	} {
		c := laptop()
		tc.mutate(&c)
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one saying %q", name, err, tc.want)
		}
	}
}

func TestParseLease(t *testing.T) {
	l, err := parseLease(map[string]string{
		"TUNDEV": "vpnc0", "VPNGATEWAY": "203.0.113.2", "INTERNAL_IP4_ADDRESS": "10.9.0.7",
		"INTERNAL_IP4_DNS": "10.1.0.53 10.1.0.54", "CISCO_BANNER": "Lab use only\nsecond line",
		"CISCO_SPLIT_INC":        "2",
		"CISCO_SPLIT_INC_0_ADDR": "10.1.0.0", "CISCO_SPLIT_INC_0_MASKLEN": "24",
		"CISCO_SPLIT_INC_1_ADDR": "10.2.0.0", "CISCO_SPLIT_INC_1_MASKLEN": "16",
	})
	if err != nil {
		t.Fatal(err)
	}
	if l.Addr.String() != "10.9.0.7" || l.Interface != "vpnc0" || l.Gateway.String() != "203.0.113.2" ||
		len(l.DNS) != 2 || l.DNS[1].String() != "10.1.0.54" || l.Banner != "Lab use only\nsecond line" ||
		len(l.SplitInclude) != 2 || l.SplitInclude[1].String() != "10.2.0.0/16" {
		t.Errorf("lease %+v", l)
	}
	if _, err := parseLease(map[string]string{"TUNDEV": "vpnc0"}); err == nil {
		t.Error("a lease without an address parsed")
	}
}

// TestScriptIsValidShell runs the script through sh -n, and through its
// connect branch with ip replaced by a recorder.
func TestScriptIsValidShell(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vpnc-script")
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v: %s", err, out)
	}
	// A fake ip that records its arguments: the script sets PATH itself,
	// so it is run with the fake's directory bound in by a wrapper.
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	fake := "#!/bin/sh\necho \"$@\" >> " + filepath.Join(dir, "ip.log") + "\n" +
		"[ \"$1 $2\" = \"-o route\" ] && echo '203.0.113.2 via 192.168.1.1 dev eth0 src 192.168.1.10 uid 0'\nexit 0\n"
	if err := os.WriteFile(filepath.Join(bin, "ip"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	patched := strings.Replace(script, "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "PATH="+bin+":/usr/bin:/bin", 1)
	if err := os.WriteFile(path, []byte(patched), 0o700); err != nil {
		t.Fatal(err)
	}
	run := func(env ...string) string {
		t.Helper()
		os.Remove(filepath.Join(dir, "ip.log"))
		cmd := exec.Command(path)
		cmd.Env = append([]string{"IPSECLAB_VPNC_DIR=" + dir, "TUNDEV=vpnc0", "VPNGATEWAY=203.0.113.2", "INTERNAL_IP4_ADDRESS=10.9.0.7"}, env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("script %v: %v: %s", env, err, out)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "ip.log"))
		return string(b)
	}
	split := run("reason=connect", "CISCO_SPLIT_INC=1", "CISCO_SPLIT_INC_0_ADDR=10.1.0.0", "CISCO_SPLIT_INC_0_MASKLEN=24")
	for _, want := range []string{"link set dev vpnc0 up mtu 1412", "addr add 10.9.0.7/32 dev vpnc0", "route replace 10.1.0.0/24 dev vpnc0 src 10.9.0.7"} {
		if !strings.Contains(split, want+"\n") {
			t.Errorf("split include: no `ip %s` in:\n%s", want, split)
		}
	}
	if l, err := readLease(filepath.Join(dir, "lease.env")); err != nil || l.Addr.String() != "10.9.0.7" || len(l.SplitInclude) != 1 {
		t.Errorf("saved lease %+v, %v", l, err)
	}
	all := run("reason=connect")
	for _, want := range []string{"route replace 203.0.113.2/32 via 192.168.1.1 dev eth0", "route replace 0.0.0.0/1 dev vpnc0 src 10.9.0.7", "route replace 128.0.0.0/1 dev vpnc0 src 10.9.0.7"} {
		if !strings.Contains(all, want+"\n") {
			t.Errorf("everything: no `ip %s` in:\n%s", want, all)
		}
	}
	gone := run("reason=disconnect")
	if !strings.Contains(gone, "route del 203.0.113.2/32 via 192.168.1.1 dev eth0\n") {
		t.Errorf("disconnect leaves the gateway's route:\n%s", gone)
	}
	if _, err := os.Stat(filepath.Join(dir, "lease.env")); !os.IsNotExist(err) {
		t.Errorf("disconnect leaves the lease file: %v", err)
	}
	if got := run("reason=pre-init"); got != "" {
		t.Errorf("pre-init ran ip: %s", got)
	}
}

func TestEvents(t *testing.T) {
	for line, want := range map[string]events.Kind{
		"IKE SA selected psk+xauth-aes128-sha1":                                              events.ProposalChosen,
		"NAT status: this end behind NAT? YES -- remote end behind NAT? no":                  events.NATDetected,
		"got address 10.9.0.1":                                                               events.Phase1Up,
		"IPSEC SA selected aes128-sha1":                                                      events.ProposalChosen,
		"VPNC started in foreground...":                                                      events.Phase2Up,
		"/usr/sbin/vpnc: authentication unsuccessful":                                        events.AuthFailed,
		"/usr/sbin/vpnc: hash comparison failed:  (ISAKMP_N_AUTHENTICATION_FAILED)(24)":      events.AuthFailed,
		"/usr/sbin/vpnc: response was invalid [1]:  (ISAKMP_N_NO_PROPOSAL_CHOSEN)(14)":       events.NoProposal,
		"/usr/sbin/vpnc: no response from target":                                            events.Phase1Failed,
		"/usr/sbin/vpnc: quick mode response rejected:  (ISAKMP_N_INVALID_MESSAGE_ID)(9)":    events.Phase2Failed,
		"/usr/sbin/vpnc: configuration response rejected:  (ISAKMP_N_INVALID_MESSAGE_ID)(9)": events.Phase1Failed,
		"/usr/sbin/vpnc: no certificates in the stack":                                       events.AuthFailed,
		"vpnc: terminated by signal: 15":                                                     events.SADeleted,
		"vpnc version 0.5.3+git20220927-1":                                                   "",
		"ipseclab-vpnc-script: connect 10.9.0.1 on vpnc0":                                    "",
	} {
		evs := LogLine{Text: line}.Events()
		if evs[0].Kind != events.VPNCLog || evs[0].Message != "vpnc: "+line {
			t.Errorf("%q: first event %+v, want the line as vpnc-log", line, evs[0])
		}
		switch {
		case want == "" && len(evs) != 1:
			t.Errorf("%q: milestones %+v, want none", line, evs[1:])
		case want != "" && (len(evs) != 2 || evs[1].Kind != want):
			t.Errorf("%q: events %+v, want a %s", line, evs, want)
		}
	}
	ev := LogLine{Text: "IKE SA selected hybrid(rsa)-aes256-sha1"}.Events()
	if ev[1].SA == nil || ev[1].SA.Type != "isakmp" || ev[1].SA.Proposal != "hybrid(rsa)-aes256-sha1" {
		t.Errorf("phase 1 proposal event %+v", ev[1])
	}
}

// TestStartWithoutVPNC: a missing vpnc is one clear error, before anything is
// written or started.
func TestStartWithoutVPNC(t *testing.T) {
	dir := t.TempDir()
	_, err := Start(context.Background(), laptop(), Options{Netns: "/run/netns/none", Dir: dir, VPNC: "/nonexistent/vpnc"})
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install vpnc") {
		t.Fatalf("Start without vpnc: %v, want ErrNotInstalled", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files written without vpnc: %v", ents)
	}
	if _, err := Start(context.Background(), laptop(), Options{Netns: "/run/netns/none", VPNC: "/bin/true", Debug: 99}); err == nil || !strings.Contains(err.Error(), "passwords") {
		t.Errorf("debug 99: %v", err)
	}
}
