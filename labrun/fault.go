package labrun

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/ipseclab/ipseclab/ipsec/fault"
	"github.com/ipseclab/ipseclab/topology"
)

// Protocol faults (package fault) reach a gateway's own stack from the
// script's `fault:` step and from `ipseclab fault` over the control socket
// (POST /v1/fault). Only ipseclab's stack has the hooks: strongSwan and vpnc
// nodes do not implement FaultInjector.

// FaultInjector is an IPsec node that takes protocol faults.
type FaultInjector interface {
	InjectFault(f fault.Fault) error
	ClearFaults() int
	ArmedFaults() []fault.Left
}

func (g *gatewayNode) InjectFault(f fault.Fault) error { return g.stack.InjectFault(f) }
func (g *gatewayNode) ClearFaults() int                { return g.stack.ClearFaults() }
func (g *gatewayNode) ArmedFaults() []fault.Left       { return g.stack.ArmedFaults() }

// FaultRequest arms a fault on a node, or clears the node's faults.
type FaultRequest struct {
	Node  string      `json:"node"`
	Fault fault.Fault `json:"fault"`
	Clear bool        `json:"clear,omitempty"`
}

// FaultReply says what was done.
type FaultReply struct {
	Armed   string `json:"armed,omitempty"`   // the fault, in words
	Cleared int    `json:"cleared,omitempty"` // faults disarmed
}

// ArmedFault is a fault armed on a node and what remains of it, as GET
// /v1/fault lists it.
type ArmedFault struct {
	Fault     string    `json:"fault"` // in words: "drop the next main-mode 4/6"
	Plane     string    `json:"plane"`
	Action    string    `json:"action"`
	Message   string    `json:"message,omitempty"`
	Conn      string    `json:"connection,omitempty"`
	Seen      int       `json:"seen"`           // matches counted so far
	Remaining int       `json:"remaining"`      // matches it still applies to; -1: every one
	Skip      int       `json:"skip,omitempty"` // matches it lets pass first (nth)
	Until     time.Time `json:"until,omitzero"` // armed for a duration: when it ends
	Left      string    `json:"left"`           // what remains, in words
}

// FaultList is a node's armed faults.
type FaultList struct {
	Node   string       `json:"node"`
	Faults []ArmedFault `json:"faults"`
}

// armedFaults lists node's armed faults.
func (r *Runtime) armedFaults(node string) (FaultList, error) {
	n, err := r.ipsecNode(node)
	if err != nil {
		return FaultList{}, err
	}
	fi, ok := n.(FaultInjector)
	if !ok {
		return FaultList{}, fmt.Errorf("%s runs no ipseclab IKE engine or data plane (strongSwan and vpnc nodes have none to inject faults into)", node)
	}
	out := FaultList{Node: node, Faults: []ArmedFault{}}
	now := time.Now()
	for _, l := range fi.ArmedFaults() {
		a := ArmedFault{Fault: l.String(), Plane: string(l.Plane), Action: string(l.Action), Conn: l.Conn,
			Seen: l.Seen, Remaining: l.Remaining, Skip: l.Skip, Until: l.Until, Left: l.Describe(now)}
		if !l.Message.IsZero() {
			a.Message = l.Message.String()
		}
		out.Faults = append(out.Faults, a)
	}
	return out, nil
}

// handleFaultList serves GET /v1/fault?node=NODE.
func (r *Runtime) handleFaultList(w http.ResponseWriter, req *http.Request) {
	list, err := r.armedFaults(req.URL.Query().Get("node"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, list)
}

// Faults lists the faults armed on node.
func (c *Client) Faults(ctx context.Context, node string) (FaultList, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var list FaultList
	if err := c.Do(ctx, "GET", "/v1/fault?node="+url.QueryEscape(node), nil, &list); err != nil {
		return FaultList{}, fmt.Errorf("%s: %w", node, err)
	}
	return list, nil
}

// injectFault arms (or clears) a fault on node. The node publishes a
// fault-injected event each time it acts.
func (r *Runtime) injectFault(req FaultRequest) (FaultReply, error) {
	n, err := r.ipsecNode(req.Node)
	if err != nil {
		return FaultReply{}, err
	}
	fi, ok := n.(FaultInjector)
	if !ok {
		return FaultReply{}, fmt.Errorf("%s runs no ipseclab IKE engine or data plane (strongSwan and vpnc nodes have none to inject faults into)", req.Node)
	}
	if req.Clear {
		return FaultReply{Cleared: fi.ClearFaults()}, nil
	}
	f := req.Fault
	f.Node = req.Node
	if f.Conn != "" && r.Lab.IPsec[f.Conn] == nil {
		return FaultReply{}, fmt.Errorf("%q is not a connection of lab %s", f.Conn, r.Lab.Name)
	}
	if err := fi.InjectFault(f); err != nil {
		return FaultReply{}, fmt.Errorf("%s: %w", req.Node, err)
	}
	return FaultReply{Armed: f.String()}, nil
}

// faultAction is the script's `fault:` step.
func (r *Runtime) faultAction(_ context.Context, s *topology.Step) error {
	f, clear, err := s.Fault.Fault()
	if err != nil {
		return err // validate refused it already
	}
	_, err = r.injectFault(FaultRequest{Node: s.Fault.Node, Fault: f, Clear: clear})
	return err
}

// handleFault serves POST /v1/fault.
func (r *Runtime) handleFault(w http.ResponseWriter, req *http.Request) {
	var fr FaultRequest
	if err := decodeBody(req, &fr); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if !fr.Clear {
		fr.Fault.Node = fr.Node
		if err := fr.Fault.Validate(); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
	}
	reply, err := r.injectFault(fr)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, reply)
}

// Fault arms a fault on node (or, with clear, disarms its faults).
func (c *Client) Fault(ctx context.Context, req FaultRequest) (FaultReply, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var reply FaultReply
	if err := c.Do(ctx, "POST", "/v1/fault", req, &reply); err != nil {
		return FaultReply{}, fmt.Errorf("%s: %w", req.Node, err)
	}
	return reply, nil
}
