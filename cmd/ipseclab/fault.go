//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ipseclab/ipseclab/ipsec/fault"
	"github.com/ipseclab/ipseclab/labrun"
	"github.com/ipseclab/ipseclab/topology"
)

func newFaultCmd() *cobra.Command {
	var lf labFlags
	var s topology.FaultStep
	var delay, hold, during time.Duration
	var list, asJSON bool
	cmd := &cobra.Command{
		Use:   "fault -t FILE NODE --message MSG ACTION [--count N | --nth N | --every | --for D] | --list [--json]",
		Short: "Make a gateway send one IKE message or ESP packet wrong on purpose, and watch the peer react",
		Long: `fault arms a protocol fault on NODE's own IPsec stack (a gateway: strongSwan and vpnc nodes
have no hooks), as the lab script's fault: step does. It acts on what NODE sends: "gw-b drops
Main Mode 4/6" is gw-b not sending it. Each time it acts, NODE publishes a fault-injected event,
and the timeline shows it before the peer's reaction.

The message: main-mode N/6, aggressive-mode N/3, quick-mode N/3, informational, dpd, transaction.
One action:
  --drop, --delay D, --duplicate, --reorder, --replay        the message's datagram
  --corrupt PAYLOAD [--after-encryption], --omit PAYLOAD     hash, sig, nonce, ke, sa, id, nat-d, spi
  --cookie zero|random                                       the sender's cookie in the header
  --forge delete|initial-contact                             an unprotected Informational to the peer
                                                             (at once, without --message)
  --esp corrupt|replay|wrong-spi|reorder|truncate            outbound ESP/AH packets (no --message)
  --clear                                                    disarm NODE's faults
  --list [--json]                                            NODE's armed faults and what remains of each
It applies to the next match, unless --count N (the next N), --nth N, --every or --for D.`,
		Example: `  ipseclab fault -t site-to-site gw-b --message "main-mode 4/6" --drop
  ipseclab fault -t site-to-site gw-a --message "main-mode 5/6" --corrupt hash --after-encryption
  ipseclab fault -t site-to-site gw-a --forge delete
  ipseclab fault -t site-to-site gw-a --esp replay --count 3
  ipseclab fault -t site-to-site gw-a --list
  ipseclab fault -t site-to-site gw-a --clear`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s.Delay.Duration, s.Hold.Duration, s.For.Duration = delay, hold, during
			s.Node = args[0]
			if list {
				if countSet(cmd, "message", "connection", "drop", "delay", "duplicate", "reorder", "corrupt", "after-encryption", "omit", "replay",
					"cookie", "forge", "esp", "hold", "clear", "count", "nth", "every", "for") > 0 {
					return fmt.Errorf("--list takes no action or occurrence: it only lists %s's armed faults", s.Node)
				}
				return listFaults(&lf, s.Node, asJSON)
			}
			if asJSON {
				return fmt.Errorf("--json goes with --list")
			}
			return injectFault(&lf, &s)
		},
	}
	f := cmd.Flags()
	f.StringVar(&s.Message, "message", "", "the IKE message: main-mode N/6, aggressive-mode N/3, quick-mode N/3, informational, dpd, transaction")
	f.StringVar(&s.Connection, "connection", "", "only this connection's messages (IKE) or SAs' packets (--esp)")
	f.BoolVar(&s.Drop, "drop", false, "do not send the message")
	f.DurationVar(&delay, "delay", 0, "send the message this much later (3s)")
	f.BoolVar(&s.Duplicate, "duplicate", false, "send the message twice")
	f.BoolVar(&s.Reorder, "reorder", false, "hold the message until the next one to the peer has left")
	f.StringVar(&s.Corrupt, "corrupt", "", "flip a byte of this payload (hash, sig, nonce, ke, sa, id, nat-d, spi)")
	f.BoolVar(&s.AfterEncryption, "after-encryption", false, "corrupt the datagram as sent, so that it does not decrypt")
	f.StringVar(&s.Omit, "omit", "", "leave this payload out")
	f.BoolVar(&s.Replay, "replay", false, "send the message, and a copy again once the exchange has moved on")
	f.StringVar(&s.Cookie, "cookie", "", "set the sender's cookie to zero or random")
	f.StringVar(&s.Forge, "forge", "", "send the peer an unprotected delete or initial-contact")
	f.StringVar(&s.ESP, "esp", "", "damage outbound ESP/AH packets: corrupt, replay, wrong-spi, reorder, truncate")
	f.DurationVar(&hold, "hold", 0, "reorder, replay: the longest a datagram waits (default 1s)")
	f.BoolVar(&s.Clear, "clear", false, "disarm the node's faults")
	f.BoolVar(&list, "list", false, "list the node's armed faults and what remains of each")
	f.BoolVar(&asJSON, "json", false, "with --list: print JSON")
	f.IntVar(&s.Count, "count", 0, "apply to the next N matches")
	f.IntVar(&s.Nth, "nth", 0, "apply to the Nth match only")
	f.BoolVar(&s.Every, "every", false, "apply to every match until cleared")
	f.DurationVar(&during, "for", 0, "apply to every match for this long (30s)")
	lf.add(cmd, true)
	return cmd
}

// countSet counts which of the named flags were given.
func countSet(cmd *cobra.Command, names ...string) int {
	n := 0
	for _, name := range names {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			n++
		}
	}
	return n
}

// listFaults prints the faults armed on node, each with what remains of it.
func listFaults(lf *labFlags, node string, asJSON bool) error {
	if err := labrun.CheckRoot(); err != nil {
		return err
	}
	lab, _, err := lf.load()
	if err != nil {
		return err
	}
	if err := checkFaultNode(lab, node); err != nil {
		return err
	}
	c, err := labrun.DialLab(lab.Name)
	if err != nil {
		return err
	}
	l, err := c.Faults(context.Background(), node)
	if err != nil {
		return err
	}
	return printJSONOr(asJSON, l, func() {
		switch len(l.Faults) {
		case 0:
			fmt.Printf("%s: no fault armed\n", node)
			return
		case 1:
			fmt.Printf("%s: 1 fault armed\n", node)
		default:
			fmt.Printf("%s: %d faults armed\n", node, len(l.Faults))
		}
		for _, f := range l.Faults {
			fmt.Printf("  %s: %s\n", f.Fault, f.Left)
		}
	})
}

// checkFaultNode refuses a node that takes no faults.
func checkFaultNode(lab *topology.Lab, node string) error {
	n := lab.Topology.Nodes[node]
	if n == nil {
		return fmt.Errorf("lab %s has no node %q", lab.Name, node)
	}
	if n.Kind != topology.KindGateway {
		return fmt.Errorf("%s is a %s node of lab %s, which has no ipseclab IKE engine or data plane to inject faults into: faults act on gateway nodes", node, n.Kind, lab.Name)
	}
	return nil
}

// injectFault checks the fault against the lab, as validate checks a fault:
// step, and sends it to the lab process.
func injectFault(lf *labFlags, s *topology.FaultStep) error {
	if err := labrun.CheckRoot(); err != nil {
		return err
	}
	lab, _, err := lf.load()
	if err != nil {
		return err
	}
	if err := checkFaultNode(lab, s.Node); err != nil {
		return err
	}
	if s.Connection != "" && lab.IPsec[s.Connection] == nil {
		return fmt.Errorf("%q is not a connection of lab %s", s.Connection, lab.Name)
	}
	f, clear, err := s.Fault()
	if err != nil {
		return flagErrors(err)
	}
	c, err := labrun.DialLab(lab.Name)
	if err != nil {
		return err
	}
	reply, err := c.Fault(context.Background(), labrun.FaultRequest{Node: s.Node, Fault: f, Clear: clear})
	if err != nil {
		return err
	}
	if clear {
		fmt.Printf("%s: %d faults cleared\n", s.Node, reply.Cleared)
	} else {
		fmt.Printf("%s: armed: %s\n", s.Node, reply.Armed)
	}
	return nil
}

// flagErrors names the flag of each problem, as a lab file's error names its
// key.
func flagErrors(err error) error {
	var out []error
	for _, e := range unjoin(err) {
		var fe *fault.FieldError
		if errors.As(e, &fe) && fe.Name != "" {
			e = fmt.Errorf("--%s: %w", fe.Name, fe.Err)
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
