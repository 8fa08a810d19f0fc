package labrun

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ipseclab/ipseclab/impair/netem"
)

// TrafficOptions configure the built-in traffic generator.
type TrafficOptions struct {
	Proto    string        // "udp" (default) or "tcp"
	Port     int           // destination port; default 5201
	Duration time.Duration // how long to send; default 3s unless Bytes or Count is set
	Bytes    int64         // tcp: send this many bytes
	Count    int64         // udp: send this many packets
	Rate     float64       // udp: pace to this many bits per second; 0: DefaultUDPRate
	Size     int           // udp payload bytes (min 24); default 1000
	Drain    time.Duration // udp: how long the receiver waits for stragglers; default 500ms
	// NoChecksum skips tcp's SHA-256 at both ends, for throughput benchmarks
	// where hashing would be the bottleneck.
	NoChecksum bool
}

// DefaultUDPRate paces a UDP stream that names no rate, in bits per second.
// Unpaced, the sender fills its socket buffer and the links' queues faster
// than any lab link forwards, and the report measures the drops it caused
// itself (95% "lost" on a clean path). 10 Mbit/s is what every lab link
// carries, impaired ones included, unless a lab gives it a lower rate:
// then say --rate.
const DefaultUDPRate = 10e6

// TrafficResult is what the receiver saw, compared with what was sent.
type TrafficResult struct {
	Proto     string        `json:"proto"`
	From      string        `json:"from"`
	To        string        `json:"to"`
	Duration  time.Duration `json:"duration"`
	BytesSent int64         `json:"bytes_sent"`
	BytesRecv int64         `json:"bytes_received"`
	Mbps      float64       `json:"mbit_per_s"` // received payload throughput
	// UDP: a numbered stream, paced at Rate (as tc writes it, "10Mbit").
	Rate       string `json:"rate,omitempty"`
	Sent       int64  `json:"sent,omitempty"`
	Received   int64  `json:"received,omitempty"` // distinct packets
	Lost       int64  `json:"lost,omitempty"`
	Reordered  int64  `json:"reordered,omitempty"` // arrived after a higher-numbered one
	Duplicated int64  `json:"duplicated,omitempty"`
	// The longest run of consecutive lost datagrams, from sequence number
	// GapFrom: with the pacing, how long the path was down.
	LongestGap int64         `json:"longest_gap,omitempty"`
	GapFrom    int64         `json:"gap_from,omitempty"`
	GapTime    time.Duration `json:"gap_time,omitempty"`
	// TCP: the byte stream's SHA-256 at both ends.
	SumSent string `json:"sha256_sent,omitempty"`
	SumRecv string `json:"sha256_received,omitempty"`
}

// Intact reports whether everything sent arrived unchanged.
func (r TrafficResult) Intact() bool {
	if r.Proto == "tcp" {
		return r.SumSent == r.SumRecv && r.BytesSent == r.BytesRecv // without checksums both are the empty hash
	}
	return r.Lost == 0 && r.Duplicated == 0
}

func (r TrafficResult) String() string {
	if r.Proto == "tcp" {
		ok := "checksums match"
		if !r.Intact() {
			ok = "CHECKSUMS DIFFER"
		}
		return fmt.Sprintf("tcp %s → %s: %d bytes in %s, %.1f Mbit/s, %s", r.From, r.To, r.BytesRecv, r.Duration.Round(time.Millisecond), r.Mbps, ok)
	}
	s := fmt.Sprintf("udp %s → %s paced at %s: sent %d, received %d, lost %d (%.2f%%), reordered %d, duplicated %d, %.1f Mbit/s",
		r.From, r.To, r.Rate, r.Sent, r.Received, r.Lost, 100*float64(r.Lost)/float64(max(r.Sent, 1)), r.Reordered, r.Duplicated, r.Mbps)
	if r.LongestGap > 1 {
		s += fmt.Sprintf("; longest gap %d in a row (#%d–#%d, %s)", r.LongestGap, r.GapFrom, r.GapFrom+r.LongestGap-1, r.GapTime.Round(time.Millisecond))
	}
	return s
}

// Traffic sends from the namespace at srcNs to dst, received by a listener in
// dstNs (the namespace of the node that owns dst).
func Traffic(ctx context.Context, srcNs, dstNs string, dst netip.Addr, opt TrafficOptions) (TrafficResult, error) {
	if opt.Proto == "" {
		opt.Proto = "udp"
	}
	if opt.Port == 0 {
		opt.Port = 5201
	}
	if opt.Duration == 0 && opt.Bytes == 0 && opt.Count == 0 {
		opt.Duration = 3 * time.Second
	}
	switch opt.Proto {
	case "udp":
		return udpTraffic(ctx, srcNs, dstNs, dst, opt)
	case "tcp":
		return tcpTraffic(ctx, srcNs, dstNs, dst, opt)
	}
	return TrafficResult{}, fmt.Errorf("traffic proto %q is neither udp nor tcp", opt.Proto)
}

const udpHeader = 24 // session id, sequence number, send time

func udpTraffic(ctx context.Context, srcNs, dstNs string, dst netip.Addr, opt TrafficOptions) (TrafficResult, error) {
	res := TrafficResult{Proto: "udp", To: netip.AddrPortFrom(dst, uint16(opt.Port)).String()}
	if opt.Size == 0 {
		opt.Size = 1000
	}
	if opt.Size < udpHeader {
		opt.Size = udpHeader
	}
	if opt.Drain == 0 {
		opt.Drain = 500 * time.Millisecond
	}
	if opt.Rate <= 0 {
		opt.Rate = DefaultUDPRate
	}
	res.Rate = netem.Rate(opt.Rate).String()
	var rx, tx *net.UDPConn
	if err := InNetns(dstNs, func() (err error) {
		rx, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, uint16(opt.Port))))
		return err
	}); err != nil {
		return res, fmt.Errorf("receiver: %w", err)
	}
	defer rx.Close()
	_ = rx.SetReadBuffer(8 << 20)
	if err := InNetns(srcNs, func() (err error) {
		tx, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, uint16(opt.Port))))
		return err
	}); err != nil {
		return res, fmt.Errorf("sender: %w", err)
	}
	defer tx.Close()
	res.From = tx.LocalAddr().String()
	var session [8]byte
	_, _ = rand.Read(session[:])

	var (
		mu       sync.Mutex
		seen     []uint64 // bitset of received sequence numbers
		maxSeq   int64    = -1
		first    time.Time
		last     time.Time
		recvDone = make(chan struct{})
	)
	go func() {
		defer close(recvDone)
		buf := make([]byte, 65536)
		for {
			n, err := rx.Read(buf)
			if err != nil {
				return
			}
			if n < udpHeader || [8]byte(buf[:8]) != session {
				continue
			}
			seq := int64(binary.BigEndian.Uint64(buf[8:16]))
			now := time.Now()
			mu.Lock()
			if first.IsZero() {
				first = now
			}
			last = now
			w := seq / 64
			for int64(len(seen)) <= w {
				seen = append(seen, 0)
			}
			bit := uint64(1) << (seq % 64)
			switch {
			case seen[w]&bit != 0:
				res.Duplicated++
			default:
				seen[w] |= bit
				res.Received++
				res.BytesRecv += int64(n)
				if seq < maxSeq {
					res.Reordered++
				} else {
					maxSeq = seq
				}
			}
			mu.Unlock()
		}
	}()

	pkt := make([]byte, opt.Size)
	copy(pkt, session[:])
	start := time.Now()
	gap := time.Duration(float64(opt.Size*8) / opt.Rate * float64(time.Second))
	next := start
	for seq := int64(0); ; seq++ {
		if opt.Count > 0 && seq >= opt.Count {
			break
		}
		if opt.Count == 0 && opt.Duration > 0 && time.Since(start) >= opt.Duration {
			break
		}
		if ctx.Err() != nil {
			break
		}
		if gap > 0 {
			next = next.Add(gap)
			if d := time.Until(next); d > 200*time.Microsecond {
				time.Sleep(d)
			}
		}
		binary.BigEndian.PutUint64(pkt[8:], uint64(seq))
		binary.BigEndian.PutUint64(pkt[16:], uint64(time.Now().UnixNano()))
		if _, err := tx.Write(pkt); err != nil {
			// A full socket buffer or an ICMP error: the packet counts as sent
			// and lost, which is what a receiver would see.
			if errors.Is(err, net.ErrClosed) {
				break
			}
		}
		res.Sent++
		res.BytesSent += int64(opt.Size)
	}
	select {
	case <-time.After(opt.Drain):
	case <-ctx.Done():
	}
	rx.Close()
	<-recvDone
	mu.Lock()
	defer mu.Unlock()
	res.Lost = res.Sent - res.Received
	res.LongestGap, res.GapFrom = longestGap(seen, res.Sent)
	res.GapTime = time.Duration(res.LongestGap) * gap
	res.Duration = time.Since(start) - opt.Drain
	if !first.IsZero() && last.After(first) {
		res.Mbps = float64(res.BytesRecv*8) / last.Sub(first).Seconds() / 1e6
	}
	return res, nil
}

// longestGap finds the longest run of sequence numbers below sent that are
// missing from the bitset seen, and where it starts.
func longestGap(seen []uint64, sent int64) (length, from int64) {
	var run int64
	for seq := int64(0); seq < sent; seq++ {
		if w := seq / 64; w < int64(len(seen)) && seen[w]&(1<<(seq%64)) != 0 {
			run = 0
			continue
		}
		run++
		if run > length {
			length, from = run, seq-run+1
		}
	}
	return length, from
}

func tcpTraffic(ctx context.Context, srcNs, dstNs string, dst netip.Addr, opt TrafficOptions) (TrafficResult, error) {
	res := TrafficResult{Proto: "tcp", To: netip.AddrPortFrom(dst, uint16(opt.Port)).String()}
	var ln *net.TCPListener
	if err := InNetns(dstNs, func() (err error) {
		ln, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(dst, uint16(opt.Port))))
		return err
	}); err != nil {
		return res, fmt.Errorf("receiver: %w", err)
	}
	defer ln.Close()

	type recvResult struct {
		n   int64
		sum string
		dur time.Duration
		err error
	}
	got := make(chan recvResult, 1)
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			got <- recvResult{err: err}
			return
		}
		defer c.Close()
		h := sha256.New()
		var sink io.Writer = h
		if opt.NoChecksum {
			sink = io.Discard
		}
		start := time.Now()
		n, err := io.CopyBuffer(sink, c, make([]byte, 256<<10))
		got <- recvResult{n: n, sum: hex.EncodeToString(h.Sum(nil)), dur: time.Since(start), err: err}
	}()

	var conn *net.TCPConn
	dialer := net.Dialer{Timeout: 10 * time.Second}
	if err := InNetns(srcNs, func() error {
		// The socket is created here, inside the namespace; connect may run
		// on any thread afterwards.
		c, err := dialer.DialContext(ctx, "tcp", netip.AddrPortFrom(dst, uint16(opt.Port)).String())
		if err == nil {
			conn = c.(*net.TCPConn)
		}
		return err
	}); err != nil {
		return res, fmt.Errorf("connect: %w", err)
	}
	res.From = conn.LocalAddr().String()
	h := sha256.New()
	buf := make([]byte, 256<<10)
	// Random content, so a corrupted or misordered byte changes the checksum.
	_, _ = rand.Read(buf)
	start := time.Now()
	for {
		if ctx.Err() != nil {
			break
		}
		chunk := buf
		if opt.Bytes > 0 {
			if res.BytesSent >= opt.Bytes {
				break
			}
			chunk = buf[:min(int64(len(buf)), opt.Bytes-res.BytesSent)]
		} else if time.Since(start) >= opt.Duration {
			break
		}
		n, err := conn.Write(chunk)
		if !opt.NoChecksum {
			h.Write(chunk[:n])
		}
		res.BytesSent += int64(n)
		if err != nil {
			conn.Close()
			return res, fmt.Errorf("send: %w", err)
		}
	}
	_ = conn.CloseWrite()
	res.SumSent = hex.EncodeToString(h.Sum(nil))
	var r recvResult
	select {
	case r = <-got:
	case <-time.After(30 * time.Second):
		r.err = errors.New("receiver did not finish within 30s after the sender")
	}
	conn.Close()
	res.BytesRecv, res.SumRecv, res.Duration = r.n, r.sum, r.dur
	if r.dur > 0 {
		res.Mbps = float64(r.n*8) / r.dur.Seconds() / 1e6
	}
	return res, r.err
}
