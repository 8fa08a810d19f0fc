package strongswan

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ipseclab/ipseclab/node/strongswan/vici"
)

// call runs one vici command on a fresh connection. A connection per command
// keeps a timed-out command from leaving a late reply for the next one.
func (c *Charon) call(ctx context.Context, cmd, event string, req *vici.Message, onEvent func(*vici.Message)) (*vici.Message, error) {
	cl, err := vici.Dial(ctx, c.ViciSocket())
	if err != nil {
		return nil, fmt.Errorf("strongswan: vici: %w", err)
	}
	defer cl.Close()
	return cl.StreamedCall(ctx, cmd, event, req, onEvent)
}

// withTimeout adds vici's timeout argument (milliseconds) from the context's
// deadline, so charon gives up when the caller does and answers with an error
// instead of leaving the call hanging.
func withTimeout(ctx context.Context, req *vici.Message) *vici.Message {
	if d, ok := ctx.Deadline(); ok {
		ms := time.Until(d).Milliseconds()
		req.Set("timeout", strconv.FormatInt(max(ms, 1), 10))
	}
	return req
}

// Initiate brings a connection up from this side and returns once charon has
// finished: both phases when child is given (Main or Aggressive Mode, then
// Quick Mode), or only the ISAKMP SA when child is empty. On failure the error
// carries charon's own account of what went wrong.
func (c *Charon) Initiate(ctx context.Context, ike, child string) error {
	req := vici.NewMessage()
	if child != "" {
		req.Set("child", child)
	}
	if ike != "" {
		req.Set("ike", ike)
	}
	req.Set("loglevel", "1")
	var log []string
	resp, err := c.call(ctx, "initiate", "control-log", withTimeout(ctx, req), func(m *vici.Message) {
		log = append(log, m.Value("msg"))
	})
	if err != nil {
		return fmt.Errorf("strongswan: initiate %s/%s: %w", ike, child, err)
	}
	if err := resp.Success(); err != nil {
		return fmt.Errorf("strongswan: initiate %s/%s: %w (charon: %s)", ike, child, err, strings.Join(lastN(log, 6), " | "))
	}
	return nil
}

// Terminate deletes every IKE SA of the named connection, with its CHILD SAs.
// charon sends Delete notifications for both (RFC 2408 §4.8 and §3.15).
func (c *Charon) Terminate(ctx context.Context, ike string) error {
	req := withTimeout(ctx, vici.NewMessage().Set("ike", ike).Set("loglevel", "1"))
	resp, err := c.call(ctx, "terminate", "control-log", req, nil)
	if err != nil {
		return fmt.Errorf("strongswan: terminate %s: %w", ike, err)
	}
	if err := resp.Success(); err != nil {
		return fmt.Errorf("strongswan: terminate %s: %w", ike, err)
	}
	return nil
}

// ListSAs returns charon's IKE SAs with their CHILD SAs.
func (c *Charon) ListSAs(ctx context.Context) ([]IKESA, error) {
	var sas []IKESA
	var perr error
	_, err := c.call(ctx, "list-sas", "list-sa", vici.NewMessage().Set("noblock", "yes"), func(m *vici.Message) {
		for _, e := range m.Sections() {
			sa, err := parseIKESA(e.Name, e.Section)
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

func lastN(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
