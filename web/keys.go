package web

import (
	"strings"

	gojson "github.com/goccy/go-json"

	"github.com/ipseclab/ipseclab/events"
)

// keysFor returns the derived keys of the SA a message or packet belongs
// to, from the keys-derived events the lab published (with --keys or
// --capture): for an IKE message its ISAKMP SA's SKEYID family, Ka and
// first IV, and for a Quick Mode message the IPsec SAs it made too; for an
// ESP or AH packet its SA's keys. Nil when the lab published none.
func (s *Server) keysFor(e *events.Event) map[string]string {
	var icky, spi string
	switch {
	case e.IKE != nil:
		icky = e.IKE.ICookie
	case e.Packet != nil:
		spi = e.Packet.SPI
	default:
		return nil
	}
	keys := map[string]string{}
	s.hub.each(func(en entry) bool {
		if !hasKind(en.line, events.KeysDerived) {
			return true
		}
		var k events.Event
		if gojson.Unmarshal(en.line, &k) != nil || k.Node != e.Node {
			return true
		}
		str := func(name string) string { v, _ := k.Fields[name].(string); return v }
		switch {
		case icky != "" && str("sa") == "isakmp" && str("icookie") == icky:
			for _, f := range [][2]string{{"skeyid", "SKEYID"}, {"skeyid_d", "SKEYID_d"}, {"skeyid_a", "SKEYID_a"}, {"skeyid_e", "SKEYID_e"},
				{"ka", "Ka"}, {"iv", "IV of phase 1"}, {"encryption", "Ka's cipher"},
				{"ne_i", "Ne_i"}, {"ke_i", "Ke_i"}, {"ne_r", "Ne_r"}, {"ke_r", "Ke_r"}} {
				if v := str(f[0]); v != "" {
					keys[f[1]] = v
				}
			}
		case icky != "" && e.IKE.Exchange == "quick" && str("icookie") == icky && str("sa") != "isakmp":
			prefix := strings.ToUpper(str("sa")) + " " + str("dir") + " SPI " + str("spi") + " "
			for _, f := range [][2]string{{"enc_key", "encryption key"}, {"salt", "salt"}, {"integ_key", "integrity key"}} {
				if v := str(f[0]); v != "" {
					keys[prefix+f[1]] = v
				}
			}
		case spi != "" && str("spi") == spi:
			for _, f := range [][2]string{{"enc_key", "encryption key"}, {"salt", "salt"}, {"integ_key", "integrity key"},
				{"encryption", "encryption"}, {"integrity", "integrity"}} {
				if v := str(f[0]); v != "" {
					keys[f[1]] = v
				}
			}
		}
		return true
	})
	if len(keys) == 0 {
		return nil
	}
	return keys
}
