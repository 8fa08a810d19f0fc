package labrun

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/impair"
)

// Wireshark reads its decryption tables (UATs) from files of these names in
// its configuration directory; the capture directory holds them beside the
// pcaps, ready to copy there (or to point tshark at, see the README).
const (
	IKEv1TableFile = "ikev1_decryption_table"
	ESPTableFile   = "esp_sa"
)

// CaptureFileName is the pcap file of a link: "gw-a_eth0--isp_eth0.pcap".
func CaptureFileName(link string) string {
	return strings.ReplaceAll(link, ":", "_") + ".pcap"
}

// keyTables appends the Wireshark table lines of every SA negotiated while the
// lab runs, each line once.
type keyTables struct {
	dir  string
	mu   sync.Mutex
	seen map[string]bool
}

func (k *keyTables) add(file, line string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if line == "" || k.seen[file+line] {
		return nil
	}
	k.seen[file+line] = true
	f, err := os.OpenFile(filepath.Join(k.dir, file), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintln(f, line)
	return err
}

// CaptureAll records every link into dir, one pcap per link at the receiving
// end of each direction (what the receivers got), from now until the lab shuts
// down, and writes Wireshark's decryption tables for every ISAKMP and IPsec SA
// negotiated meanwhile: ikev1_decryption_table (initiator cookie, Ka) and
// esp_sa. The IPsec stacks must publish their keys (RuntimeOptions.PublishKeys).
func (r *Runtime) CaptureAll(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	kt := &keyTables{dir: dir, seen: map[string]bool{}}
	for _, f := range []string{IKEv1TableFile, ESPTableFile} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			return err
		}
	}
	r.keys.Store(kt)
	for _, l := range r.Lab.Topology.Links {
		il, ok := r.Deployment.Wire(l.Name).(*impair.Link)
		if !ok {
			continue
		}
		c, err := il.CaptureFile(filepath.Join(dir, CaptureFileName(l.Name)), impair.CaptureOptions{Point: impair.AtReceiver})
		if err != nil {
			return fmt.Errorf("capture %s: %w", l.Name, err)
		}
		r.AddCloser(c.Close)
	}
	sub := r.Bus.SubscribeWithHistory(func(e *events.Event) bool { return e.Kind == events.KeysDerived })
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range sub.C() {
			if line, _ := e.Fields["wireshark_ikev1"].(string); line != "" {
				_ = kt.add(IKEv1TableFile, line)
			}
			if line, _ := e.Fields["wireshark_esp_sa"].(string); line != "" {
				_ = kt.add(ESPTableFile, anyAddresses(line))
			}
		}
	}()
	r.AddCloser(func() error {
		sub.Close()
		<-done
		return nil
	})
	return nil
}

// anyAddresses replaces an esp_sa line's source and destination with "*", so
// that the SA is recognised by its SPI on every link, on either side of a NAT.
func anyAddresses(line string) string {
	f := splitCSV(line)
	if len(f) < 4 {
		return line
	}
	f[1], f[2] = `"*"`, `"*"`
	return strings.Join(f, ",")
}

// splitCSV splits on commas outside double quotes.
func splitCSV(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		in := false
		for i, c := range data {
			switch {
			case c == '"':
				in = !in
			case c == ',' && !in:
				return i + 1, data[:i], nil
			}
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
