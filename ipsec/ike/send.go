package ike

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

// Every datagram the engine sends leaves through transmit, after its event
// was published: the bus numbers events in the order they are published, and
// the peer may receive, publish and answer before a write returns. Publishing
// first is what keeps a reply after its request in every run.

// transmit sends one IKE datagram and counts it; a refusal is an event.
func (e *Engine) transmit(local, remote netip.AddrPort, b []byte, what, conn string) error {
	e.stats.Sent++
	err := e.tr.SendIKE(local, remote, b)
	if err != nil {
		e.sendFailed(local, remote, what, conn, err)
	}
	return err
}

// sendFailed reports a datagram the network refused: no route, a local
// address that is gone, a firewall. Without it the timeline would show only
// retransmissions, and the reason would be invisible.
func (e *Engine) sendFailed(local, remote netip.AddrPort, what, conn string, err error) {
	e.stats.SendErrors++
	name := errnoName(err)
	e.publishLimited(events.Event{
		Kind: events.IKESendFailed, Conn: conn, Level: events.Error,
		Message: fmt.Sprintf("%s to %s could not be sent from %s: %v (%s)", what, remote, local, err, name),
		Explain: "The kernel refused the datagram before it left the node: check the node's routes to the peer and the address IKE sends from.",
		Fields:  map[string]any{"peer": remote.String(), "local": local.String(), "errno": name, "error": err.Error()},
	})
}

// errnoNames are the errors a send to a peer meets in practice.
var errnoNames = map[syscall.Errno]string{
	syscall.ENETUNREACH: "ENETUNREACH", syscall.EHOSTUNREACH: "EHOSTUNREACH", syscall.EADDRNOTAVAIL: "EADDRNOTAVAIL",
	syscall.EACCES: "EACCES", syscall.EPERM: "EPERM", syscall.EMSGSIZE: "EMSGSIZE", syscall.ECONNREFUSED: "ECONNREFUSED",
	syscall.ENOBUFS: "ENOBUFS", syscall.EINVAL: "EINVAL", syscall.ENETDOWN: "ENETDOWN", syscall.EAGAIN: "EAGAIN",
}

// errnoName is the C name of the errno under err ("ENETUNREACH"), or "" when
// err carries none.
func errnoName(err error) string {
	var no syscall.Errno
	if !errors.As(err, &no) {
		return ""
	}
	if n, ok := errnoNames[no]; ok {
		return n
	}
	return fmt.Sprintf("errno %d", int(no))
}

// publishKeepalive reports a NAT-T keepalive about to be sent. They come every
// 20 s (by default) per ISAKMP SA behind a NAT; the timeline summarises them.
func (e *Engine) publishKeepalive(sa *isakmpSA, every time.Duration) {
	e.pub.Publish(events.Event{
		Kind: events.NATKeepalive, Step: events.StepData, Conn: sa.conn.cfg.Name,
		Message: fmt.Sprintf("NAT-T keepalive (0xFF) to %s from %s", sa.remote, sa.local),
		Explain: fmt.Sprintf("Behind a NAT, a one-byte UDP datagram every %s keeps the NAT's mapping for port 4500 alive while the tunnel is idle (RFC 3948 §2.3). "+
			"It must come more often than the NAT's UDP timeout, or the mapping expires and the peer's packets meet a NAT that no longer knows us.", every),
		Fields: map[string]any{"peer": sa.remote.String(), "local": sa.local.String(), "interval_s": every.Seconds()},
	})
}
