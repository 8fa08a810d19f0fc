package labrun

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// A crash at run time is the script's `crash:` and `restart:` steps by hand,
// for a live demonstration: `ipseclab crash -t LAB NODE` loses all of a
// node's IPsec state at once and tells no peer, as a power cut would;
// `ipseclab restart` brings the implementation back with its configuration
// and no SAs.

// CrashRequest asks the lab process to crash or restart a node's IPsec
// implementation.
type CrashRequest struct {
	Node    string `json:"node"`
	Restart bool   `json:"restart,omitempty"`
}

// handleCrash serves POST /v1/crash.
func (r *Runtime) handleCrash(w http.ResponseWriter, req *http.Request) {
	var cr CrashRequest
	if err := decodeBody(req, &cr); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	n, err := r.ipsecNode(cr.Node)
	if err == nil {
		if cr.Restart {
			err = n.Restart(req.Context())
		} else {
			err = n.Crash()
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, map[string]string{"status": "ok"})
}

// Crash crashes a node's IPsec implementation (restart: brings it back).
func (c *Client) Crash(ctx context.Context, node string, restart bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.Do(ctx, "POST", "/v1/crash", CrashRequest{Node: node, Restart: restart}, nil); err != nil {
		return fmt.Errorf("%s: %w", node, err)
	}
	return nil
}
