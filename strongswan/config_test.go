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
	conf := strongswanConf(logLevels(map[string]int{"default": 2, "knl": 0}, true), false, 0, Retransmit{})
	for _, want := range []string{
		"load = kernel-libipsec kernel-netlink socket-default vici nonce random x509 pubkey pkcs1 pkcs8 pem openssl xauth-generic unity",
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

func roadWarriorConfigs() (gateway, client Config) {
	gateway = Config{
		Connections: []Connection{{
			Name:        "rw",
			LocalAddrs:  []string{"203.0.113.2"},
			RemoteAddrs: []string{"%any"},
			Aggressive:  true,
			Proposals:   []string{"aes128-sha1-modp1024"},
			PSK:         "group-secret",
			XAuthUsers:  map[string]string{"bob": "bob-pw", "alice": "alice-pw"},
			Pools:       []string{"rw-pool"},
			Push:        true,
			Children:    []Child{{Name: "rw-lan", LocalTS: []string{"10.1.0.0/24"}}},
		}},
		Pools: []Pool{{
			Name:          "rw-pool",
			Addrs:         "10.9.0.0/24",
			DNS:           []string{"10.1.0.53"},
			SplitInclude:  []string{"10.1.0.0/24", "10.2.0.0/24"},
			Banner:        "Lab use only",
			DefaultDomain: "lab.example",
		}},
	}
	client = Config{Connections: []Connection{{
		Name:          "rw",
		RemoteAddrs:   []string{"203.0.113.2"},
		Proposals:     []string{"aes128-sha1-modp1024"},
		PSK:           "group-secret",
		XAuthID:       "alice",
		XAuthPassword: "alice-pw",
		VIPs:          []string{"0.0.0.0"},
		Children:      []Child{{Name: "rw-lan", RemoteTS: []string{"10.1.0.0/24"}}},
	}}}
	return gateway, client
}

// sectionLines returns the trimmed lines of the section that opens with
// header, up to its closing brace.
func sectionLines(t *testing.T, conf, header string) []string {
	t.Helper()
	lines := strings.Split(conf, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != header+" {" {
			continue
		}
		depth, out := 0, []string{}
		for _, m := range lines[i:] {
			m = strings.TrimSpace(m)
			out = append(out, m)
			depth += strings.Count(m, "{") - strings.Count(m, "}")
			if depth == 0 {
				return out
			}
		}
	}
	t.Fatalf("no section %q in:\n%s", header, conf)
	return nil
}

func TestSwanctlConfRemoteAccess(t *testing.T) {
	gateway, client := roadWarriorConfigs()
	for _, tc := range []struct {
		name string
		cfg  Config
		want map[string][]string // section → its lines, in order
		not  []string
	}{
		{
			name: "gateway",
			cfg:  gateway,
			want: map[string][]string{
				"remote":       {"remote {", `auth = "psk"`, "}"},
				"remote-xauth": {"remote-xauth {", "round = 2", `auth = "xauth-generic"`, "}"},
				"rw-lan":       {"rw-lan {", `local_ts = "10.1.0.0/24"`, `mode = "tunnel"`, "}"},
				"xauth-rw-1":   {"xauth-rw-1 {", `id = "alice"`, `secret = "alice-pw"`, "}"},
				"xauth-rw-2":   {"xauth-rw-2 {", `id = "bob"`, `secret = "bob-pw"`, "}"},
				"rw-pool": {"rw-pool {", `addrs = "10.9.0.0/24"`, `dns = "10.1.0.53"`,
					`split_include = "10.1.0.0/24,10.2.0.0/24"`, `28672 = "Lab use only"`, `28674 = "lab.example"`, "}"},
			},
			not: []string{"vips", "local-xauth", "remote_ts"},
		},
		{
			name: "client",
			cfg:  client,
			want: map[string][]string{
				"local":       {"local {", `auth = "psk"`, "}"},
				"local-xauth": {"local-xauth {", "round = 2", `auth = "xauth"`, `xauth_id = "alice"`, "}"},
				"rw-lan":      {"rw-lan {", `remote_ts = "10.1.0.0/24"`, `mode = "tunnel"`, "}"},
				"xauth-rw-1":  {"xauth-rw-1 {", `id = "alice"`, `secret = "alice-pw"`, "}"},
			},
			not: []string{"pools", "pull", "remote-xauth", "local_ts"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := tc.cfg.SwanctlConf()
			if err != nil {
				t.Fatal(err)
			}
			for header, want := range tc.want {
				if got := sectionLines(t, conf, header); strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("section %s:\n%s\nwant:\n%s", header, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			}
			for _, absent := range tc.not {
				if strings.Contains(conf, absent) {
					t.Errorf("%s has %q:\n%s", tc.name, absent, conf)
				}
			}
		})
	}
	conf, _ := gateway.SwanctlConf()
	for _, want := range []string{`pools = "rw-pool"`, "pull = no", "aggressive = yes", `remote_addrs = "%any"`} {
		if !strings.Contains(conf, want) {
			t.Errorf("the gateway's swanctl.conf lacks %q:\n%s", want, conf)
		}
	}
	conf, _ = client.SwanctlConf()
	if !strings.Contains(conf, `vips = "0.0.0.0"`) {
		t.Errorf("the client's swanctl.conf lacks vips:\n%s", conf)
	}
	if !gateway.RemoteAccess() || !client.RemoteAccess() || officeConfig().RemoteAccess() {
		t.Error("RemoteAccess: want the gateway and the client, not the office")
	}
	if !strings.Contains(strongswanConf(logLevels(nil, false), true, 0, Retransmit{}), "cisco_unity = yes") ||
		strings.Contains(strongswanConf(logLevels(nil, false), false, 0, Retransmit{}), "cisco_unity") {
		t.Error("cisco_unity must be on for remote access and off otherwise")
	}
}

func TestValidateRemoteAccess(t *testing.T) {
	for name, tc := range map[string]struct {
		client bool // mutate the client, else the gateway
		mutate func(*Config)
		want   string
	}{
		"client without password":  {true, func(c *Config) { c.Connections[0].XAuthPassword = "" }, "both XAuthID and XAuthPassword"},
		"password without name":    {true, func(c *Config) { c.Connections[0].XAuthID = "" }, "both XAuthID and XAuthPassword"},
		"client and gateway":       {true, func(c *Config) { c.Connections[0].XAuthUsers = map[string]string{"a": "b"} }, "either the XAUTH client or the gateway"},
		"client with pools":        {true, func(c *Config) { c.Connections[0].Pools = []string{"p"} }, "Pools belong on the gateway"},
		"bad vip":                  {true, func(c *Config) { c.Connections[0].VIPs = []string{"any"} }, "vips"},
		"client without local_ts":  {true, func(c *Config) { c.Connections[0].VIPs = nil }, "local_ts is required"},
		"gateway without remote":   {false, func(c *Config) { c.Connections[0].Pools = nil }, "remote_ts is required"},
		"unknown pool":             {false, func(c *Config) { c.Connections[0].Pools = []string{"other"} }, `pool "other" is not among`},
		"empty user password":      {false, func(c *Config) { c.Connections[0].XAuthUsers["carol"] = "" }, "must not be empty"},
		"gateway with vips":        {false, func(c *Config) { c.Connections[0].VIPs = []string{"0.0.0.0"} }, "VIPs belong on the client"},
		"bad pool range":           {false, func(c *Config) { c.Pools[0].Addrs = "10.9.0.50-10.9.0.10" }, "want a subnet"},
		"bad pool dns":             {false, func(c *Config) { c.Pools[0].DNS = []string{"dns.lab"} }, "want an address"},
		"bad split include":        {false, func(c *Config) { c.Pools[0].SplitInclude = []string{"10.1.0.1"} }, "split_include"},
		"pool twice":               {false, func(c *Config) { c.Pools = append(c.Pools, c.Pools[0]) }, "defined twice"},
		"hybrid client, no users":  {false, func(c *Config) { c.Connections[0].RemoteAuth = "xauth" }, "same method"},
		"hybrid client with a psk": {true, func(c *Config) { c.Connections[0].LocalAuth = "xauth"; c.Connections[0].RemoteAuth = "pubkey" }, "pre-shared key is given"},
		"xauth both sides":         {true, func(c *Config) { c.Connections[0].LocalAuth = "xauth"; c.Connections[0].RemoteAuth = "xauth" }, "same method"},
		"bad send_cert":            {false, func(c *Config) { c.Connections[0].SendCert = "sometimes" }, "send_cert"},
		"pool range":               {false, func(c *Config) { c.Pools[0].Addrs = "10.9.0.10-10.9.0.50" }, ""},
	} {
		gateway, client := roadWarriorConfigs()
		cfg := &gateway
		if tc.client {
			cfg = &client
		}
		tc.mutate(cfg)
		err := cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one saying %q", name, err, tc.want)
		}
	}
}

// charon.keep_alive: charon's default unless set, 0s for none.
func TestStrongswanConfKeepAlive(t *testing.T) {
	for _, c := range []struct {
		every time.Duration
		want  string
	}{{0, ""}, {5 * time.Second, "keep_alive = 5s"}, {-1, "keep_alive = 0s"}} {
		conf := strongswanConf(logLevels(nil, false), false, c.every, Retransmit{})
		if got := strings.Contains(conf, "keep_alive"); got != (c.want != "") || c.want != "" && !strings.Contains(conf, c.want) {
			t.Errorf("keep-alive %v: want %q in\n%s", c.every, c.want, conf)
		}
	}
}

// charon.retransmit_*: charon's defaults unless set.
func TestStrongswanConfRetransmit(t *testing.T) {
	if conf := strongswanConf(logLevels(nil, false), false, 0, Retransmit{}); strings.Contains(conf, "retransmit") {
		t.Errorf("retransmit settings without any asked for:\n%s", conf)
	}
	conf := strongswanConf(logLevels(nil, false), false, 0, Retransmit{Timeout: 1500 * time.Millisecond, Tries: 3, Base: 1.5})
	for _, want := range []string{"retransmit_timeout = 1.5", "retransmit_tries = 3", "retransmit_base = 1.5"} {
		if !strings.Contains(conf, want) {
			t.Errorf("want %q in\n%s", want, conf)
		}
	}
}
