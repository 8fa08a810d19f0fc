package labrun

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ipseclab/ipseclab/events"
	"github.com/ipseclab/ipseclab/nat"
	"github.com/ipseclab/ipseclab/nat/natconf"
	"github.com/ipseclab/ipseclab/topology"
)

// startNATs programs every NAT node's netfilter rules and starts its
// conntrack watcher, once the node's interfaces and routes exist.
func (r *Runtime) startNATs() error {
	r.nats = map[string]*nat.Box{}
	for _, name := range r.Lab.NodeNames() {
		n := r.Lab.Topology.Nodes[name]
		if n.Kind != topology.KindNAT {
			continue
		}
		cfg := natconf.Config{}
		if n.NAT != nil {
			cfg = *n.NAT
		}
		box, err := nat.Start(r.Deployment.Nodes[name].Handle, cfg, events.Publisher{Bus: r.Bus, Node: name})
		if err != nil {
			return fmt.Errorf("NAT box %s: %w", name, err)
		}
		r.nats[name] = box
		r.AddCloser(box.Close)
	}
	r.RegisterAction("nat-flush", func(_ context.Context, s *topology.Step) error {
		_, err := r.natFlush(s.NATFlush.Node)
		return err
	})
	r.Handle("GET /v1/nat/{node}", func(w http.ResponseWriter, req *http.Request) {
		box, err := r.natBox(req.PathValue("node"))
		if err != nil {
			writeError(w, http.StatusNotFound, err)
			return
		}
		m, err := box.Show()
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, m)
	})
	r.Handle("POST /v1/nat/{node}/flush", func(w http.ResponseWriter, req *http.Request) {
		m, err := r.natFlush(req.PathValue("node"))
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, m)
	})
	return nil
}

func (r *Runtime) natBox(node string) (*nat.Box, error) {
	if box := r.nats[node]; box != nil {
		return box, nil
	}
	return nil, fmt.Errorf("%s is not a NAT node of lab %s", node, r.Lab.Name)
}

func (r *Runtime) natFlush(node string) ([]nat.Mapping, error) {
	box, err := r.natBox(node)
	if err != nil {
		return nil, err
	}
	return box.Flush()
}

// NATShow lists a NAT node's mappings.
func (c *Client) NATShow(ctx context.Context, node string) ([]nat.Mapping, error) {
	var m []nat.Mapping
	return m, c.Do(ctx, "GET", "/v1/nat/"+node, nil, &m)
}

// NATFlush drops a NAT node's mappings, as a NAT reboot would, and returns them.
func (c *Client) NATFlush(ctx context.Context, node string) ([]nat.Mapping, error) {
	var m []nat.Mapping
	return m, c.Do(ctx, "POST", "/v1/nat/"+node+"/flush", nil, &m)
}
