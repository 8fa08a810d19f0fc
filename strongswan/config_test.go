package strongswan

import (
	"strings"
	"testing"
	"time"
)

func officeConfig() Config {
	return Config{Connections: []Connection{{
		Name:        "office",
		LocalAddrs:  []string{"198.51.100.2"},
		RemoteAddrs: []string{"203.0.113.2"},
		Aggressive:  true,
		Proposals:   []string{"aes128-sha256-modp2048", "aes256-sha256-ecp256"},
		LocalID:     "laptop@example.org",
		PSK:         `lab "only" \ secret`,
		RekeyTime:   time.Hour,
		DPDDelay:    10 * time.Second,
		DPDTimeout:  30 * time.Second,
		Children: []Child{{
			Name:         "office-lan",
			LocalTS:      []string{"192.168.1.10/32"},
			RemoteTS:     []string{"10.1.0.0/24", "10.2.0.0/24"},
			ESPProposals: []string{"aes128gcm16-modp2048"},
			StartAction:  "trap",
			DPDAction:    "restart",
			LifeTime:     20 * time.Minute,
			LifeBytes:    1 << 20,
		}},
	}}}
}

func TestSwanctlConf(t *testing.T) {
	conf, err := officeConfig().SwanctlConf()
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(conf, "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{
		"office {",
		`version = "1"`,
		`local_addrs = "198.51.100.2"`,
		`remote_addrs = "203.0.113.2"`,
		`proposals = "aes128-sha256-modp2048,aes256-sha256-ecp256"`,
		"aggressive = yes",
		"rekey_time = 3600s",
		"dpd_delay = 10s",
		"dpd_timeout = 30s",
		`auth = "psk"`,
		`id = "laptop@example.org"`,
		"office-lan {",
		`local_ts = "192.168.1.10/32"`,
		`remote_ts = "10.1.0.0/24,10.2.0.0/24"`,
		`esp_proposals = "aes128gcm16-modp2048"`,
		`mode = "tunnel"`,
		`start_action = "trap"`,
		`dpd_action = "restart"`,
		"life_time = 1200s",
		"life_bytes = 1048576",
		"ike-office {",
		// The secret belongs to the configured local ID and the peer's
		// address, the ID charon uses for it by default.
		`id-1 = "laptop@example.org"`,
		`id-2 = "203.0.113.2"`,
		`secret = "lab \"only\" \\ secret"`,
	} {
		if !lines[want] {
			t.Errorf("swanctl.conf lacks %q:\n%s", want, conf)
		}
	}
	for _, absent := range []string{"encap", "over_time", "close_action", "rekey_bytes", `id = ""`} {
		if strings.Contains(conf, absent) {
			t.Errorf("unset %q must be left to charon's default:\n%s", absent, conf)
		}
	}
	if strings.Count(conf, "{") != strings.Count(conf, "}") {
		t.Errorf("unbalanced braces:\n%s", conf)
	}
}

func TestSecretValue(t *testing.T) {
	for psk, want := range map[string]string{
		"plain":      `"plain"`,
		"0xdeadbeef": "0x30786465616462656566", // not hex to swanctl: its bytes, hex-encoded
		"0sAAAA":     "0x307341414141",
		"tab\there":  "0x7461620968657265",
	} {
		if got := secretValue(psk); got != want {
			t.Errorf("secretValue(%q) = %s, want %s", psk, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"no connections":      func(c *Config) { c.Connections = nil },
		"bad name":            func(c *Config) { c.Connections[0].Name = "has space" },
		"no remote":           func(c *Config) { c.Connections[0].RemoteAddrs = nil },
		"no secret":           func(c *Config) { c.Connections[0].PSK = "" },
		"certificates":        func(c *Config) { c.Connections[0].LocalAuth = "pubkey" },
		"fractional seconds":  func(c *Config) { c.Connections[0].DPDDelay = 1500 * time.Millisecond },
		"no traffic selector": func(c *Config) { c.Connections[0].Children[0].LocalTS = nil },
		"transport mode":      func(c *Config) { c.Connections[0].Children[0].Mode = "transport" },
		"bad start action":    func(c *Config) { c.Connections[0].Children[0].StartAction = "route" },
		"newline in id":       func(c *Config) { c.Connections[0].RemoteID = "a\nb" },
		"duplicate connection": func(c *Config) {
			c.Connections = append(c.Connections, c.Connections[0])
		},
		"duplicate child": func(c *Config) {
			other := c.Connections[0]
			other.Name = "other"
			c.Connections = append(c.Connections, other)
		},
	} {
		c := officeConfig()
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: validated", name)
		}
	}
	if err := officeConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestStrongswanConf(t *testing.T) {
	conf := strongswanConf(logLevels(map[string]int{"default": 2, "knl": 0}, true))
	for _, want := range []string{
		"load = kernel-libipsec kernel-netlink socket-default vici nonce random x509 pubkey pkcs1 pkcs8 pem openssl",
		"i_dont_care_about_security_and_use_aggressive_mode_psk = yes",
		"socket = unix:///run/charon.vici",
		"path = /run/charon.log",
		"ike_name = yes",
		"log_level = yes",
		"default = 2",
		"knl = 0",
		"ike = 4",
		"chd = 4",
		"mgr = 2",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("strongswan.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "stroke") || strings.Contains(conf, "resolve") {
		t.Errorf("stroke and resolve must not be loaded:\n%s", conf)
	}
	// Key logging never lowers a level the caller asked for.
	if got := logLevels(map[string]int{"default": 4}, true)["mgr"]; got != 4 {
		t.Errorf("mgr level %d with default 4, want 4", got)
	}
}
