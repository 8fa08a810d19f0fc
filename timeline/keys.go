package timeline

import (
	"strings"

	"github.com/ipseclab/ipseclab/events"
)

// keys lists the secrets of a keys-derived event under its message, from
// column col: for the ISAKMP SA the SKEYID family, Ka and phase 1's first IV;
// with the revised method of public-key encryption Ne_i, Ke_i, Ne_r and
// Ke_r too; for an IPsec SA its KEYMAT split into the encryption key (and GCM's salt)
// and the integrity key. A key longer than the line continues under itself.
func (t *Timeline) keys(e events.Event, col int) []string {
	str := func(k string) string { v, _ := e.Fields[k].(string); return v }
	type row struct{ label, hex, note string }
	var rows []row
	switch str("sa") {
	case "isakmp":
		rows = []row{
			{"SKEYID", str("skeyid"), ""},
			{"SKEYID_d", str("skeyid_d"), ""},
			{"SKEYID_a", str("skeyid_a"), ""},
			{"SKEYID_e", str("skeyid_e"), ""},
			{"Ka", str("ka"), str("encryption")},
			{"IV of phase 1", str("iv"), ""},
		}
		// Revised public-key encryption (RFC 2409 §5.3): the keys from the
		// nonces that hid the KE and ID.
		if str("ne_i") != "" {
			rows = append(rows,
				row{"Ne_i", str("ne_i"), "prf(Ni_b, CKY-I)"}, row{"Ke_i", str("ke_i"), "hid the initiator's KE and ID"},
				row{"Ne_r", str("ne_r"), "prf(Nr_b, CKY-R)"}, row{"Ke_r", str("ke_r"), "hid the responder's KE and ID"})
		}
	case "esp", "ah":
		if str("sa") == "esp" {
			rows = append(rows, row{"encryption key", str("enc_key"), str("encryption")})
		}
		if salt := str("salt"); salt != "" {
			rows = append(rows, row{"salt", salt, ""})
		}
		integ := row{"integrity key", str("integ_key"), str("integrity")}
		if integ.hex == "" && integ.note == "none" {
			integ.note = "none: " + str("encryption") + " authenticates as it encrypts"
		}
		rows = append(rows, integ)
	default:
		return nil
	}
	lw := 0
	for _, r := range rows {
		lw = max(lw, DisplayWidth(r.label))
	}
	// Whole bytes on each line, so that a wrapped key still reads as hex.
	chunk := 0
	if t.opt.Width > 0 {
		chunk = max(16, t.opt.Width-col-lw-2) &^ 1
	}
	indent := strings.Repeat(" ", col)
	under := indent + strings.Repeat(" ", lw+2)
	var lines []string
	for _, r := range rows {
		// Lines of even length: a 32-byte key on two lines is two halves.
		var parts []string
		n := len(r.hex)
		if chunk > 0 && n > chunk {
			lines := (n + chunk - 1) / chunk
			n = ((n+lines-1)/lines + 1) &^ 1
		}
		for hex := r.hex; hex != ""; {
			k := min(n, len(hex))
			parts = append(parts, hex[:k])
			hex = hex[k:]
		}
		if r.note != "" {
			note := "(" + r.note + ")"
			switch last := len(parts) - 1; {
			case last < 0:
				wrapped := []string{note}
				if chunk > 0 {
					wrapped = Wrap(note, chunk, chunk)
				}
				for _, l := range wrapped {
					parts = append(parts, t.c(dim, l))
				}
			case chunk == 0 || len(parts[last])+2+DisplayWidth(note) <= chunk:
				parts[last] += "  " + t.c(dim, note)
			default:
				parts = append(parts, t.c(dim, note))
			}
		}
		for i, p := range parts {
			if i == 0 {
				lines = append(lines, indent+t.c(dim, pad(r.label, lw))+"  "+p)
			} else {
				lines = append(lines, under+p)
			}
		}
	}
	return lines
}
