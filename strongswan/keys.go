package strongswan

import (
	"bufio"
	"cmp"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Keys are the secrets charon negotiated, as read from its log at the levels
// Options.KeyLog sets. Debian's build has no save-keys plugin, so the log is
// the only place they appear.
type Keys struct {
	IKE []IKEKeys
	ESP []ESPKeys
}

// IKEKeys are an ISAKMP SA's cookies and its encryption key Ka (RFC 2409
// appendix B), what Wireshark needs to decrypt IKEv1 messages.
type IKEKeys struct {
	Conn     string // connection name
	UniqueID uint32 // charon's id of the IKE SA
	ICookie  uint64
	RCookie  uint64 // 0 until the responder's cookie is known
	Ka       []byte
}

// ESPKeys are one IPsec SA's keys: one direction of a CHILD SA.
type ESPKeys struct {
	Conn     string // connection name
	UniqueID uint32 // charon's id of the IKE SA it was negotiated under
	SPI      uint32
	Src, Dst netip.Addr // as charon saw them; a NAT in between may rewrite them
	Encr     string     // charon's name: AES_CBC, AES_GCM_16, 3DES_CBC, NULL, ...
	EncrKey  []byte     // for AES-GCM this ends in the 4-byte salt (RFC 4106 §8.1)
	Integ    string     // charon's name: HMAC_SHA1_96, ...; "" for AEAD ciphers
	IntegKey []byte
}

// ParseKeys reads a whole charon filelog and returns the keys in it.
func ParseKeys(r io.Reader) (Keys, error) {
	var kp keyParser
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if l, err := ParseLogLine(sc.Text()); err == nil {
			kp.feed(l)
		}
	}
	return kp.keys(), sc.Err()
}

// keyParser follows the log line by line. charon logs from many threads at
// once, but each thread logs one IKE SA's step at a time, so the parser keeps
// its partial state per thread.
type keyParser struct {
	mu      sync.Mutex
	ike     map[uint32]*IKEKeys
	threads map[int]*threadState
	esp     []ESPKeys
}

type threadState struct {
	// A hex dump in progress: "<label> => N bytes @ 0x..." followed by lines
	// of up to 16 bytes.
	dumpLabel string
	dumpWant  int
	dump      []byte

	// Quick Mode role of the exchange this thread is finishing: true when it
	// parsed the responder's message (we initiated), false when it parsed the
	// initiator's.
	qmInitiator bool

	encr, integ                  string
	encrI, encrR, integI, integR []byte
	addingDir                    string // "inbound" or "outbound" while an SA is being added
	inbound, outbound            *ESPKeys
}

var (
	dumpHeader = regexp.MustCompile(`^(.*) => (\d+) bytes @ 0x[0-9a-f]+$`)
	dumpLine   = regexp.MustCompile(`^ *\d+: ((?:[0-9A-F]{2} )*[0-9A-F]{2})`)
	checkin    = regexp.MustCompile(`^checkin IKEv1 SA .*\[(\d+)\] with SPIs ([0-9a-f]{16})_i ([0-9a-f]{16})_r$`)
	spiLine    = regexp.MustCompile(`^  SPI 0x([0-9a-f]{8}), src ([^ \[]+)\S* dst ([^ \[]+)\S*$`)
)

func (kp *keyParser) thread(n int) *threadState {
	if kp.threads == nil {
		kp.threads = map[int]*threadState{}
	}
	ts := kp.threads[n]
	if ts == nil {
		ts = &threadState{}
		kp.threads[n] = ts
	}
	return ts
}

func (kp *keyParser) ikeSA(id uint32) *IKEKeys {
	if kp.ike == nil {
		kp.ike = map[uint32]*IKEKeys{}
	}
	k := kp.ike[id]
	if k == nil {
		k = &IKEKeys{UniqueID: id}
		kp.ike[id] = k
	}
	return k
}

func (kp *keyParser) feed(l LogLine) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	ts := kp.thread(l.Thread)

	if ts.dumpWant > 0 {
		if m := dumpLine.FindStringSubmatch(l.Text); m != nil {
			b, err := hex.DecodeString(strings.ReplaceAll(m[1], " ", ""))
			if err == nil && len(ts.dump)+len(b) <= ts.dumpWant {
				ts.dump = append(ts.dump, b...)
				if len(ts.dump) == ts.dumpWant {
					kp.dumped(l, ts, ts.dumpLabel, ts.dump)
					ts.dumpWant, ts.dump = 0, nil
				}
				return
			}
		}
		ts.dumpWant, ts.dump = 0, nil // an incomplete dump: drop it
	}
	if m := dumpHeader.FindStringSubmatch(l.Text); m != nil {
		if n, err := strconv.Atoi(m[2]); err == nil && n > 0 && n <= 4096 {
			ts.dumpLabel, ts.dumpWant = m[1], n
		}
		return
	}

	switch l.Group {
	case "MGR":
		if m := checkin.FindStringSubmatch(l.Text); m != nil {
			id, _ := strconv.ParseUint(m[1], 10, 32)
			k := kp.ikeSA(uint32(id))
			k.ICookie, _ = strconv.ParseUint(m[2], 16, 64)
			if r, _ := strconv.ParseUint(m[3], 16, 64); r != 0 {
				k.RCookie = r
			}
			if l.IKESA != "" {
				k.Conn = l.IKESA
			}
		}
	case "ENC":
		// The thread that derives a CHILD SA's keys has just parsed the Quick
		// Mode message that completes it: QM2 at the initiator, QM3 at the
		// responder (RFC 2409 §5.5).
		switch {
		case strings.HasPrefix(l.Text, "parsed QUICK_MODE response"):
			*ts = threadState{qmInitiator: true}
		case strings.HasPrefix(l.Text, "parsed QUICK_MODE request"):
			*ts = threadState{qmInitiator: false}
		}
	case "CHD":
		kp.child(l, ts)
	}
}

func (kp *keyParser) dumped(l LogLine, ts *threadState, label string, b []byte) {
	switch label {
	case "encryption key Ka":
		if l.IKESAID != 0 {
			k := kp.ikeSA(l.IKESAID)
			k.Ka = b
			if l.IKESA != "" { // a Main Mode responder derives Ka before it knows the connection
				k.Conn = l.IKESA
			}
		}
	case "encryption initiator key":
		ts.encrI = b
	case "encryption responder key":
		ts.encrR = b
	case "integrity initiator key":
		ts.integI = b
	case "integrity responder key":
		ts.integR = b
	}
}

func (kp *keyParser) child(l LogLine, ts *threadState) {
	text := strings.TrimSpace(l.Text)
	switch {
	case strings.HasPrefix(text, "using ") && strings.HasSuffix(text, " for encryption"):
		ts.encr = strings.TrimSuffix(strings.TrimPrefix(text, "using "), " for encryption")
	case strings.HasPrefix(text, "using ") && strings.HasSuffix(text, " for integrity"):
		ts.integ = strings.TrimSuffix(strings.TrimPrefix(text, "using "), " for integrity")
	case text == "using HMAC_SHA2_256_128 with 96-bit truncation":
		ts.integ = "HMAC_SHA2_256_96"
	case text == "adding inbound ESP SA":
		ts.addingDir = "inbound"
	case text == "adding outbound ESP SA":
		ts.addingDir = "outbound"
	default:
		m := spiLine.FindStringSubmatch(l.Text)
		if m == nil || ts.addingDir == "" {
			return
		}
		spi, _ := strconv.ParseUint(m[1], 16, 32)
		src, err1 := netip.ParseAddr(m[2])
		dst, err2 := netip.ParseAddr(m[3])
		if err1 != nil || err2 != nil {
			return
		}
		sa := &ESPKeys{Conn: l.IKESA, UniqueID: l.IKESAID, SPI: uint32(spi), Src: src, Dst: dst, Encr: ts.encr, Integ: ts.integ}
		// KEYMAT is computed with the SPI the SA's destination chose (RFC 2409
		// §5.5), and charon's "initiator" keys protect what the Quick Mode
		// initiator sends: the SA towards the Quick Mode responder. So at the
		// initiator that is the outbound SA, at the responder the inbound one.
		forInitiator := (ts.addingDir == "outbound") == ts.qmInitiator
		if forInitiator {
			sa.EncrKey, sa.IntegKey = ts.encrI, ts.integI
		} else {
			sa.EncrKey, sa.IntegKey = ts.encrR, ts.integR
		}
		if ts.addingDir == "inbound" {
			ts.inbound = sa
		} else {
			ts.outbound = sa
		}
		ts.addingDir = ""
		if ts.inbound != nil && ts.outbound != nil {
			if ts.inbound.EncrKey != nil || ts.inbound.IntegKey != nil {
				kp.esp = append(kp.esp, *ts.inbound, *ts.outbound)
			}
			*ts = threadState{}
		}
	}
}

func (kp *keyParser) keys() Keys {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	var k Keys
	for _, ike := range kp.ike {
		if ike.Ka != nil && ike.ICookie != 0 {
			k.IKE = append(k.IKE, *ike)
		}
	}
	slices.SortFunc(k.IKE, func(a, b IKEKeys) int { return cmp.Compare(a.UniqueID, b.UniqueID) })
	k.ESP = slices.Clone(kp.esp)
	return k
}

// WriteIKEv1DecryptionTable writes Wireshark's ikev1_decryption_table file:
// one "initiator cookie,Ka" line per ISAKMP SA, both in hex, unquoted (the
// table's fields are byte strings).
func (k Keys) WriteIKEv1DecryptionTable(w io.Writer) error {
	for _, ike := range k.IKE {
		if _, err := fmt.Fprintf(w, "%016x,%x\n", ike.ICookie, ike.Ka); err != nil {
			return err
		}
	}
	return nil
}

// WriteESPSATable writes Wireshark's esp_sa file. The addresses are written as
// wildcards: the SPI alone identifies the SA in a lab, and a NAT between charon
// and the capture point would otherwise make the entry miss.
// Wireshark decrypts ESP only with the preference esp.enable_encryption_decode
// set to TRUE.
func (k Keys) WriteESPSATable(w io.Writer) error {
	for _, sa := range k.ESP {
		encr, integ, err := sa.WiresharkAlgorithms()
		if err != nil {
			return err
		}
		proto := "IPv4"
		if sa.Dst.Is6() && !sa.Dst.Is4In6() {
			proto = "IPv6"
		}
		integKey := ""
		if len(sa.IntegKey) > 0 {
			integKey = fmt.Sprintf("0x%x", sa.IntegKey)
		}
		if _, err := fmt.Fprintf(w, "%q,\"*\",\"*\",\"0x%08x\",%q,\"0x%x\",%q,%q\n",
			proto, sa.SPI, encr, sa.EncrKey, integ, integKey); err != nil {
			return err
		}
	}
	return nil
}

// Wireshark 4.0's names for ESP algorithms (packet-ipsec.c,
// esp_encryption_type_vals and esp_authentication_type_vals).
var (
	wiresharkEncr = map[string]string{
		"NULL":         "NULL",
		"3DES_CBC":     "TripleDES-CBC [RFC2451]",
		"AES_CBC":      "AES-CBC [RFC3602]",
		"AES_CTR":      "AES-CTR [RFC3686]",
		"DES_CBC":      "DES-CBC [RFC2405]",
		"CAST_CBC":     "CAST5-CBC [RFC2144]",
		"BLOWFISH_CBC": "BLOWFISH-CBC [RFC2451]",
		"AES_GCM_8":    "AES-GCM with 8 octet ICV [RFC4106]",
		"AES_GCM_12":   "AES-GCM with 12 octet ICV [RFC4106]",
		"AES_GCM_16":   "AES-GCM with 16 octet ICV [RFC4106]",
	}
	wiresharkInteg = map[string]string{
		"":                  "NULL",
		"HMAC_SHA1_96":      "HMAC-SHA-1-96 [RFC2404]",
		"HMAC_SHA2_256_96":  "HMAC-SHA-256-96 [draft-ietf-ipsec-ciph-sha-256-00]",
		"HMAC_SHA2_256_128": "HMAC-SHA-256-128 [RFC4868]",
		"HMAC_SHA2_384_192": "HMAC-SHA-384-192 [RFC4868]",
		"HMAC_SHA2_512_256": "HMAC-SHA-512-256 [RFC4868]",
		"HMAC_MD5_96":       "HMAC-MD5-96 [RFC2403]",
	}
)

// WiresharkAlgorithms names the SA's algorithms as Wireshark's esp_sa table
// does.
func (sa ESPKeys) WiresharkAlgorithms() (encr, integ string, err error) {
	encr, ok := wiresharkEncr[sa.Encr]
	if !ok {
		return "", "", fmt.Errorf("strongswan: Wireshark cannot decrypt ESP with %q", sa.Encr)
	}
	integ, ok = wiresharkInteg[sa.Integ]
	if !ok {
		return "", "", fmt.Errorf("strongswan: Wireshark has no ESP integrity algorithm %q", sa.Integ)
	}
	return encr, integ, nil
}
