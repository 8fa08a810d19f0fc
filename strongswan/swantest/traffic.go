package swantest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netns"

	"github.com/ipseclab/ipseclab/internal/namespace"
)

// listen opens a socket bound inside namespace h. A socket keeps the namespace
// it was created in, so it can be used from any goroutine afterwards.
func listen(h netns.NsHandle, network string, addr netip.AddrPort) (ln net.Listener, pc net.PacketConn, err error) {
	err = namespace.RunHandle(h, func() error {
		var err error
		if network == "tcp" {
			ln, err = net.Listen("tcp", addr.String())
		} else {
			pc, err = net.ListenPacket("udp", addr.String())
		}
		return err
	})
	return ln, pc, err
}

// UDPEcho sends one datagram from src (in namespace from) to dst (in
// namespace to, where an echo server is started for the purpose) and waits
// for the echo. Between the gateways' inner addresses it crosses the tunnel,
// so it fails unless the CHILD SA carries traffic both ways.
func UDPEcho(ctx context.Context, from netns.NsHandle, src netip.Addr, to netns.NsHandle, dst netip.Addr, payload []byte) error {
	_, server, err := listen(to, "udp", netip.AddrPortFrom(dst, 0))
	if err != nil {
		return fmt.Errorf("echo server on %s: %w", dst, err)
	}
	defer server.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, peer, err := server.ReadFrom(buf)
			if err != nil {
				return
			}
			server.WriteTo(buf[:n], peer)
		}
	}()

	_, client, err := listen(from, "udp", netip.AddrPortFrom(src, 0))
	if err != nil {
		return fmt.Errorf("echo client on %s: %w", src, err)
	}
	defer client.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	client.SetDeadline(deadline)
	serverAddr := server.LocalAddr()
	buf := make([]byte, 65536)
	// The first datagrams may meet a route that libipsec is still installing:
	// resend until the echo arrives or the deadline passes.
	for {
		if _, err := client.WriteTo(payload, serverAddr); err != nil {
			return fmt.Errorf("send %s → %s: %w", src, serverAddr, err)
		}
		client.SetReadDeadline(minTime(deadline, time.Now().Add(200*time.Millisecond)))
		n, _, err := client.ReadFrom(buf)
		if err == nil {
			if !bytes.Equal(buf[:n], payload) {
				return fmt.Errorf("echo from %s differs: got %d bytes", serverAddr, n)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no echo from %s: %w", serverAddr, err)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// TCPStream is one TCP connection from a client namespace to a sink in a
// server namespace, for bulk throughput.
type TCPStream struct {
	conn     net.Conn
	ln       net.Listener
	received chan int64
}

// DialTCPStream opens the connection: a sink listening on dst in namespace to,
// which reads and discards everything, and a client connected from namespace
// from.
func DialTCPStream(ctx context.Context, from netns.NsHandle, to netns.NsHandle, dst netip.Addr) (*TCPStream, error) {
	ln, _, err := listen(to, "tcp", netip.AddrPortFrom(dst, 0))
	if err != nil {
		return nil, fmt.Errorf("sink on %s: %w", dst, err)
	}
	s := &TCPStream{ln: ln, received: make(chan int64, 1)}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			s.received <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		s.received <- n
	}()
	err = namespace.RunHandle(from, func() error {
		var d net.Dialer
		var err error
		s.conn, err = d.DialContext(ctx, "tcp", ln.Addr().String())
		return err
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("connect to %s: %w", ln.Addr(), err)
	}
	return s, nil
}

var zeros = make([]byte, 256*1024)

// Send writes n bytes.
func (s *TCPStream) Send(n int64) error {
	for n > 0 {
		chunk := min(n, int64(len(zeros)))
		if _, err := s.conn.Write(zeros[:chunk]); err != nil {
			return err
		}
		n -= chunk
	}
	return nil
}

// Close ends the stream and returns how many bytes the sink received, once it
// has received all of them.
func (s *TCPStream) Close() (int64, error) {
	s.conn.Close()
	n := <-s.received
	s.ln.Close()
	if n < 0 {
		return 0, fmt.Errorf("sink never accepted the connection")
	}
	return n, nil
}
