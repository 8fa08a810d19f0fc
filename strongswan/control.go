package strongswan

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/strongswan/govici/vici"
)

// call runs one vici command on a fresh session, handing each event of the
// named kind to onEvent. A session per command keeps a timed-out command
// from leaving a late reply for the next one. A command charon refuses
// (success: no) is an error carrying its errmsg.
//
// It does not use govici's CallStreaming: in v0.8.0 that delivers events and
// the command's reply on two channels and takes whichever is ready, so the
// events charon sends just before its reply are sometimes lost (list-certs
// lost its last certificate about one call in three). Here the session
// subscribes to the event and a goroutine collects it; govici's reader hands
// every event to the subscribers before it reads the reply behind it, so
// when Call returns all of them are in the channel or consumed.
func (c *Charon) call(ctx context.Context, cmd, event string, req *vici.Message, onEvent func(*vici.Message)) error {
	s, err := vici.NewSession(vici.WithSocketPath(c.ViciSocket()))
	if err != nil {
		return fmt.Errorf("strongswan: vici: %w", err)
	}
	defer s.Close()
	if err := s.Subscribe(event); err != nil {
		return fmt.Errorf("strongswan: vici: %w", err)
	}
	// The reader drops an event when the channel is full, so the buffer
	// covers a burst while the goroutine below keeps up.
	events := make(chan vici.Event, 1024)
	s.NotifyEvents(events)
	replied, collected := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(collected)
		handle := func(e vici.Event) {
			if onEvent != nil && e.Name == event {
				onEvent(e.Message)
			}
		}
		for {
			select {
			case e, ok := <-events:
				if !ok {
					return
				}
				handle(e)
			case <-replied:
				for {
					select {
					case e, ok := <-events:
						if !ok {
							return
						}
						handle(e)
					default:
						return
					}
				}
			}
		}
	}()
	_, err = s.Call(ctx, cmd, req)
	close(replied)
	<-collected
	s.StopEvents(events)
	return err
}

// request builds a command's message from key-value pairs.
func request(kv ...string) *vici.Message {
	m := vici.NewMessage()
	for i := 0; i+1 < len(kv); i += 2 {
		_ = m.Set(kv[i], kv[i+1]) // strings always set
	}
	return m
}

// withTimeout adds vici's timeout argument (milliseconds) from the context's
// deadline, so charon gives up when the caller does and answers with an error
// instead of leaving the call hanging.
func withTimeout(ctx context.Context, req *vici.Message) *vici.Message {
	if d, ok := ctx.Deadline(); ok {
		ms := time.Until(d).Milliseconds()
		_ = req.Set("timeout", strconv.FormatInt(max(ms, 1), 10))
	}
	return req
}

// Initiate brings a connection up from this side and returns once charon has
// finished: both phases when child is given (Main or Aggressive Mode, then
// Quick Mode), or only the ISAKMP SA when child is empty. On failure the error
// carries charon's own account of what went wrong.
func (c *Charon) Initiate(ctx context.Context, ike, child string) error {
	req := request("loglevel", "1")
	if child != "" {
		_ = req.Set("child", child)
	}
	if ike != "" {
		_ = req.Set("ike", ike)
	}
	var log []string
	err := c.call(ctx, "initiate", "control-log", withTimeout(ctx, req), func(m *vici.Message) {
		if s, ok := m.Get("msg").(string); ok {
			log = append(log, s)
		}
	})
	if err != nil {
		return fmt.Errorf("strongswan: initiate %s/%s: %w (charon: %s)", ike, child, err, strings.Join(lastN(log, 6), " | "))
	}
	return nil
}

// Terminate deletes every IKE SA of the named connection, with its CHILD SAs.
// charon sends Delete notifications for both (RFC 2408 §4.8 and §3.15).
func (c *Charon) Terminate(ctx context.Context, ike string) error {
	if err := c.call(ctx, "terminate", "control-log", withTimeout(ctx, request("ike", ike, "loglevel", "1")), nil); err != nil {
		return fmt.Errorf("strongswan: terminate %s: %w", ike, err)
	}
	return nil
}

// ListSAs returns charon's IKE SAs with their CHILD SAs.
func (c *Charon) ListSAs(ctx context.Context) ([]IKESA, error) {
	var sas []IKESA
	var perr error
	err := c.call(ctx, "list-sas", "list-sa", request("noblock", "yes"), func(m *vici.Message) {
		for _, name := range m.Keys() {
			sec, ok := m.Get(name).(*vici.Message)
			if !ok {
				continue
			}
			sa, err := parseIKESA(name, sec)
			if err != nil && perr == nil {
				perr = err
			}
			sas = append(sas, sa)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("strongswan: list-sas: %w", err)
	}
	return sas, perr
}

// Stats is what charon's vici `stats` command counts of IKE: its IKE SAs,
// and how many of them are half-open. The rest of its answer (workers,
// queues, plugins, memory) describes the daemon, not the traffic, and
// neither charon nor kernel-libipsec counts dropped packets where vici can
// read them.
type Stats struct {
	IKESAs   uint64 `json:"ike_sas"`
	HalfOpen uint64 `json:"half_open"`
}

// Stats asks charon for its IKE SA counts.
func (c *Charon) Stats(ctx context.Context) (Stats, error) {
	s, err := vici.NewSession(vici.WithSocketPath(c.ViciSocket()))
	if err != nil {
		return Stats{}, fmt.Errorf("strongswan: vici: %w", err)
	}
	defer s.Close()
	m, err := s.Call(ctx, "stats", vici.NewMessage())
	if err != nil {
		return Stats{}, fmt.Errorf("strongswan: stats: %w", err)
	}
	sec, ok := m.Get("ikesas").(*vici.Message)
	if !ok {
		return Stats{}, errors.New("strongswan: stats: no ikesas section in charon's answer")
	}
	f := fields{m: sec}
	st := Stats{IKESAs: f.uint("total", 64), HalfOpen: f.uint("half-open", 64)}
	if f.err != nil {
		return st, fmt.Errorf("strongswan: stats: ikesas %w", f.err)
	}
	return st, nil
}

func lastN(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Cert is an X.509 certificate charon holds, as vici's list-certs reports it.
type Cert struct {
	Cert       *x509.Certificate
	Flag       string // "NONE" (end entity), "CA", "AA" or "OCSP": how it was loaded
	HasPrivKey bool   // charon holds the matching private key
}

// ListCerts returns the X.509 certificates charon holds: those loaded from
// the node's directory and those referenced by its connections.
func (c *Charon) ListCerts(ctx context.Context) ([]Cert, error) {
	var certs []Cert
	var perr error
	err := c.call(ctx, "list-certs", "list-cert", request("type", "X509", "flag", "ANY"), func(m *vici.Message) {
		data, _ := m.Get("data").(string)
		crt, err := x509.ParseCertificate([]byte(data))
		if err != nil {
			if perr == nil {
				perr = fmt.Errorf("strongswan: list-certs: %w", err)
			}
			return
		}
		flag, _ := m.Get("flag").(string)
		priv, _ := m.Get("has_privkey").(string)
		certs = append(certs, Cert{Cert: crt, Flag: flag, HasPrivKey: priv == "yes"})
	})
	if err != nil {
		return nil, fmt.Errorf("strongswan: list-certs: %w", err)
	}
	return certs, perr
}
