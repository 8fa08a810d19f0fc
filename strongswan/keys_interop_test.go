package strongswan_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/strongswan"
	"github.com/ipseclab/ipseclab/strongswan/swantest"
)

// TestKeysDecryptCapture checks the keys read from charon's log against an
// independent implementation: tshark must decrypt every encrypted ISAKMP
// message and every ESP packet of a captured exchange with the tables written
// from them, using the keys of either side.
func TestKeysDecryptCapture(t *testing.T) {
	tshark := testenv.NeedCommand(t, "tshark")
	for _, tc := range []struct {
		name string
		cfg  swantest.PairConfig
	}{
		{"MainMode_AESGCM", swantest.PairConfig{IKEProposal: "aes128-sha256-modp2048", ESPProposal: "aes128gcm16-modp2048"}},
		{"AggressiveMode_AESCBC_SHA1", swantest.PairConfig{IKEProposal: "aes256-sha256-ecp256", ESPProposal: "aes128-sha1", Aggressive: true}},
		// 3DES needs a 24-byte Ka, longer than SHA1's SKEYID_e: the expansion
		// of RFC 2409 appendix B.
		{"MainMode_3DES_SHA256", swantest.PairConfig{IKEProposal: "3des-sha1-modp2048", ESPProposal: "3des-sha256"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.KeyLog = true
			p := swantest.StartPair(t, tc.cfg)
			pcap := filepath.Join(t.TempDir(), "exchange.pcap")
			capture := startCapture(t, p.A.Netns, "eth0", pcap)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := p.A.Charon.Initiate(ctx, swantest.ConnName, swantest.ChildName); err != nil {
				t.Fatal(err)
			}
			establishedSA(ctx, t, p.B.Charon)
			for i := range 3 {
				if err := swantest.UDPEcho(ctx, p.A.Netns, p.A.Inner, p.B.Netns, p.B.Inner, []byte(fmt.Sprint("datagram ", i))); err != nil {
					t.Fatal(err)
				}
			}
			// The Delete notifications are encrypted too (RFC 2408 §4.8).
			if err := p.A.Charon.Terminate(ctx, swantest.ConnName); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // let the Deletes reach the wire
			capture.stop(t)

			keysA := waitKeys(ctx, t, p.A.Charon)
			keysB := waitKeys(ctx, t, p.B.Charon)
			compareKeys(t, keysA, keysB)

			for side, keys := range map[string]strongswan.Keys{"initiator": keysA, "responder": keysB} {
				checkDecryption(t, tshark, pcap, side, keys)
			}
		})
	}
}

// waitKeys waits until the log tail has read one ISAKMP SA's and one CHILD
// SA's keys (two ESP SAs).
func waitKeys(ctx context.Context, t *testing.T, c *strongswan.Charon) strongswan.Keys {
	t.Helper()
	for {
		k := c.Keys()
		if len(k.IKE) == 1 && len(k.ESP) == 2 {
			return k
		}
		select {
		case <-ctx.Done():
			t.Fatalf("keys in %s: %d ISAKMP, %d ESP; want 1 and 2", c.LogPath(), len(k.IKE), len(k.ESP))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// compareKeys checks that both sides' logs give the same keys for the same
// SAs: the test that the initiator/responder mapping is right on both roles.
func compareKeys(t *testing.T, a, b strongswan.Keys) {
	t.Helper()
	if a.IKE[0].ICookie != b.IKE[0].ICookie || !bytes.Equal(a.IKE[0].Ka, b.IKE[0].Ka) {
		t.Errorf("ISAKMP keys differ: A %016x %x, B %016x %x", a.IKE[0].ICookie, a.IKE[0].Ka, b.IKE[0].ICookie, b.IKE[0].Ka)
	}
	for _, sa := range a.ESP {
		var match *strongswan.ESPKeys
		for i := range b.ESP {
			if b.ESP[i].SPI == sa.SPI {
				match = &b.ESP[i]
			}
		}
		switch {
		case match == nil:
			t.Errorf("SPI %08x only in A's keys", sa.SPI)
		case !bytes.Equal(sa.EncrKey, match.EncrKey) || !bytes.Equal(sa.IntegKey, match.IntegKey):
			t.Errorf("SPI %08x: A has %x/%x, B has %x/%x", sa.SPI, sa.EncrKey, sa.IntegKey, match.EncrKey, match.IntegKey)
		case sa.Src != match.Src || sa.Dst != match.Dst || sa.Encr != match.Encr || sa.Integ != match.Integ:
			t.Errorf("SPI %08x: A %+v, B %+v", sa.SPI, sa, *match)
		}
	}
}

// checkDecryption writes the tables into a private Wireshark configuration
// directory, as capture code would, and has tshark dissect the capture.
func checkDecryption(t *testing.T, tshark, pcap, side string, keys strongswan.Keys) {
	t.Helper()
	conf := t.TempDir()
	wsDir := filepath.Join(conf, "wireshark")
	if err := os.MkdirAll(wsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var ike, esp bytes.Buffer
	if err := keys.WriteIKEv1DecryptionTable(&ike); err != nil {
		t.Fatal(err)
	}
	if err := keys.WriteESPSATable(&esp); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"ikev1_decryption_table": ike.Bytes(), "esp_sa": esp.Bytes()} {
		if err := os.WriteFile(filepath.Join(wsDir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(tshark, "-n", "-r", pcap,
		"-o", "esp.enable_encryption_decode:TRUE",
		"-o", "esp.enable_authentication_check:TRUE",
		"-T", "fields", "-E", "separator=;",
		"-e", "frame.number", "-e", "_ws.malformed", "-e", "isakmp.flag_e", "-e", "isakmp.typepayload",
		"-e", "esp.spi", "-e", "esp.icv_good", "-e", "ip.src", "-e", "udp.payload",
		"-Y", "isakmp or esp")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+conf, "HOME="+conf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v: %s", err, stderr.String())
	}

	var encrypted, esps int
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ";")
		if len(f) != 8 {
			t.Fatalf("tshark line %q", line)
		}
		frame, malformed, flagE, payloads, spi, icvGood, ipSrc, udp := f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]
		retransmission := seen[udp]
		seen[udp] = true
		if retransmission {
			// charon resends a message byte for byte, but Wireshark decrypts
			// the copy with the IV chain already moved on by the original
			// (RFC 2409 appendix B), so the copy reads as garbage.
			continue
		}
		if malformed != "" {
			t.Errorf("%s keys: frame %s is malformed", side, frame)
		}
		switch {
		case spi != "":
			esps++
			// Decrypted ESP shows the inner IP header as a second ip.src, and
			// the ICV checks out (with the integrity key, or GCM's tag). An
			// ICMP error inside shows a third, the header it quotes: UDPEcho
			// resends after 200 ms, and the late second echo finds its client
			// gone (port unreachable).
			if strings.Count(ipSrc, ",") < 1 || !strings.Contains(ipSrc, swantest.LANA.Addr().Next().String()) && !strings.Contains(ipSrc, swantest.LANB.Addr().Next().String()) {
				t.Errorf("%s keys: ESP frame %s (SPI %s) not decrypted: ip.src %q", side, frame, spi, ipSrc)
			}
			if icvGood != "1" && icvGood != "True" {
				t.Errorf("%s keys: ESP frame %s (SPI %s): ICV good = %q", side, frame, spi, icvGood)
			}
		case flagE == "1" || flagE == "True":
			encrypted++
			// Every encrypted IKEv1 message carries a HASH payload (type 8)
			// first or after the ID: seeing it means the decryption worked.
			if !containsField(payloads, "8") {
				t.Errorf("%s keys: encrypted ISAKMP frame %s not decrypted (payloads %q)", side, frame, payloads)
			}
		}
	}
	// Main Mode 5 and 6 (Aggressive Mode encrypts none), Quick Mode 1 to 3,
	// and the two Deletes; and 3 echoes each way, or more if a datagram had to
	// be sent again.
	if encrypted < 5 || esps < 6 {
		t.Errorf("%s keys: %d encrypted ISAKMP and %d ESP frames; want at least 5 and 6:\n%s", side, encrypted, esps, out)
	}
}

func containsField(list, v string) bool {
	for _, x := range strings.Split(list, ",") {
		if x == v {
			return true
		}
	}
	return false
}

// capture records every frame on an interface of a namespace into a pcap file,
// through an AF_PACKET socket whose reads the runtime poller can interrupt.
type capture struct {
	sock *os.File
	file *os.File
	done chan error
}

func startCapture(t *testing.T, h netns.NsHandle, ifName, path string) *capture {
	t.Helper()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	link, err := nh.LinkByName(ifName)
	nh.Close()
	if err != nil {
		t.Fatal(err)
	}
	const ethPAll = 0x0003
	proto := int(uint16(ethPAll)<<8 | uint16(ethPAll)>>8) // network byte order
	var fd int
	err = namespace.RunHandle(h, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: link.Attrs().Index})
	})
	if err != nil {
		t.Fatalf("packet socket on %s: %v", ifName, err)
	}
	f, err := os.Create(path)
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	c := &capture{sock: os.NewFile(uintptr(fd), "packet"), file: f, done: make(chan error, 1)}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := c.sock.Read(buf)
			if err != nil {
				if errors.Is(err, os.ErrClosed) {
					err = nil
				}
				c.done <- err
				return
			}
			ci := gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: n, Length: n}
			if err := w.WritePacket(ci, buf[:n]); err != nil {
				c.done <- err
				return
			}
		}
	}()
	t.Cleanup(func() { c.sock.Close(); f.Close() })
	return c
}

func (c *capture) stop(t *testing.T) {
	t.Helper()
	c.sock.Close()
	if err := <-c.done; err != nil {
		t.Fatalf("capture: %v", err)
	}
	if err := c.file.Close(); err != nil {
		t.Fatal(err)
	}
}
