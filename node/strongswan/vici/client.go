package vici

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Packet types (vici README, "Packet layer").
const (
	pktCmdRequest      = 0
	pktCmdResponse     = 1
	pktCmdUnknown      = 2
	pktEventRegister   = 3
	pktEventUnregister = 4
	pktEventConfirm    = 5
	pktEventUnknown    = 6
	pktEvent           = 7
)

// MaxSegment is the largest transport segment charon sends or accepts (512 KiB).
const MaxSegment = 512 * 1024

// Packet is one decoded vici packet.
type Packet struct {
	Type    byte
	Name    string   // for named types: requests, (un)registrations and events
	Message *Message // for requests, responses and events
}

func named(t byte) bool {
	return t == pktCmdRequest || t == pktEventRegister || t == pktEventUnregister || t == pktEvent
}

func hasMessage(t byte) bool {
	return t == pktCmdRequest || t == pktCmdResponse || t == pktEvent
}

// ParsePacket decodes the payload of one transport segment.
func ParsePacket(seg []byte) (*Packet, error) {
	if len(seg) == 0 {
		return nil, errors.New("vici: empty packet")
	}
	p := &Packet{Type: seg[0]}
	if p.Type > pktEvent {
		return nil, fmt.Errorf("vici: unknown packet type %d", p.Type)
	}
	rest := seg[1:]
	if named(p.Type) {
		if len(rest) == 0 || int(rest[0]) > len(rest)-1 {
			return nil, errors.New("vici: truncated packet name")
		}
		p.Name = string(rest[1 : 1+int(rest[0])])
		rest = rest[1+int(rest[0]):]
	}
	if hasMessage(p.Type) {
		m, err := ParseMessage(rest)
		if err != nil {
			return nil, err
		}
		p.Message = m
	} else if len(rest) != 0 {
		return nil, fmt.Errorf("vici: %d unexpected bytes after packet type %d", len(rest), p.Type)
	}
	return p, nil
}

// MarshalBinary encodes the packet as the payload of one transport segment.
func (p *Packet) MarshalBinary() ([]byte, error) {
	b := []byte{p.Type}
	var err error
	if named(p.Type) {
		if b, err = appendName(b, p.Name); err != nil {
			return nil, err
		}
	}
	if hasMessage(p.Type) && p.Message != nil {
		if b, err = p.Message.appendTo(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Client is a vici connection. Commands are strictly sequential on one
// connection (vici has no request identifiers), so Client serialises them.
type Client struct {
	mu     sync.Mutex
	conn   net.Conn
	broken error // set once a call failed mid-exchange: the stream is out of step
}

// Dial connects to a vici unix socket, e.g. "/run/charon.vici".
func Dial(ctx context.Context, socketPath string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socketPath)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Call sends a command and returns its response message.
func (c *Client) Call(ctx context.Context, cmd string, req *Message) (*Message, error) {
	return c.StreamedCall(ctx, cmd, "", req, nil)
}

// StreamedCall sends a command that streams its results as events named event
// (list-sas streams list-sa, initiate streams control-log), calling onEvent for
// each, and returns the final response. With event == "" it is a plain Call.
// A context deadline becomes the connection's deadline; when it expires the
// connection is no longer usable, since a late response would be taken as the
// answer to the next command.
func (c *Client) StreamedCall(ctx context.Context, cmd, event string, req *Message, onEvent func(*Message)) (*Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return nil, fmt.Errorf("vici %s: connection unusable after an earlier failure: %w", cmd, c.broken)
	}
	resp, err := c.exchange(ctx, cmd, event, req, onEvent)
	if err != nil {
		c.broken = err
	}
	return resp, err
}

func (c *Client) exchange(ctx context.Context, cmd, event string, req *Message, onEvent func(*Message)) (*Message, error) {
	deadline, _ := ctx.Deadline()
	if err := c.conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if event != "" {
		if err := c.register(pktEventRegister, event); err != nil {
			return nil, err
		}
	}
	if req == nil {
		req = NewMessage()
	}
	if err := c.write(&Packet{Type: pktCmdRequest, Name: cmd, Message: req}); err != nil {
		return nil, err
	}
	var resp *Message
	for resp == nil {
		p, err := c.read()
		if err != nil {
			return nil, fmt.Errorf("vici %s: %w", cmd, err)
		}
		switch p.Type {
		case pktCmdResponse:
			resp = p.Message
		case pktCmdUnknown:
			return nil, fmt.Errorf("vici: charon does not know the command %q", cmd)
		case pktEvent:
			if p.Name == event && onEvent != nil {
				onEvent(p.Message)
			}
		default:
			return nil, fmt.Errorf("vici %s: unexpected packet type %d", cmd, p.Type)
		}
	}
	if event != "" {
		if err := c.register(pktEventUnregister, event); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

func (c *Client) register(t byte, event string) error {
	if err := c.write(&Packet{Type: t, Name: event}); err != nil {
		return err
	}
	for {
		p, err := c.read()
		if err != nil {
			return err
		}
		switch p.Type {
		case pktEventConfirm:
			return nil
		case pktEventUnknown:
			return fmt.Errorf("vici: charon does not know the event %q", event)
		case pktEvent:
			// An event of a registration still being torn down; not ours.
		default:
			return fmt.Errorf("vici: unexpected packet type %d while (un)registering %q", p.Type, event)
		}
	}
}

func (c *Client) write(p *Packet) error {
	body, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	if len(body) > MaxSegment {
		return fmt.Errorf("vici: packet of %d bytes exceeds %d", len(body), MaxSegment)
	}
	seg := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(body)), uint32(len(body)))
	_, err = c.conn.Write(append(seg, body...))
	return err
}

func (c *Client) read() (*Packet, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.conn, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxSegment {
		return nil, fmt.Errorf("vici: segment of %d bytes exceeds %d", n, MaxSegment)
	}
	seg := make([]byte, n)
	if _, err := io.ReadFull(c.conn, seg); err != nil {
		return nil, err
	}
	return ParsePacket(seg)
}
