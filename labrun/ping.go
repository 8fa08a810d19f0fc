package labrun

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// PingOptions configure the built-in ping (iputils is not on a fresh machine).
type PingOptions struct {
	Count    int           // echo requests to send; default 3
	Interval time.Duration // between requests; default 1s, as ping
	Timeout  time.Duration // wait for the last reply; default 1s
	Size     int           // payload bytes; default 56, as ping
	// DontFragment sets DF and refuses to send what exceeds the path MTU
	// the host knows, as ping -M do: how a host meets an MTU it cannot pass.
	DontFragment bool
}

// PingReply is one echo reply.
type PingReply struct {
	Seq  int
	From netip.Addr
	TTL  int
	Size int
	RTT  time.Duration
}

// PingResult summarises a ping run like ping's last lines.
type PingResult struct {
	Dest     netip.Addr
	Sent     int
	Received int
	Replies  []PingReply
	Errors   []string // ICMP errors received (unreachable, time exceeded)
	Min, Avg time.Duration
	Max, Dev time.Duration
}

// Loss is the fraction of requests without a reply, 0..1.
func (r PingResult) Loss() float64 {
	if r.Sent == 0 {
		return 0
	}
	return float64(r.Sent-r.Received) / float64(r.Sent)
}

// Summary prints ping's two summary lines.
func (r PingResult) Summary() string {
	s := fmt.Sprintf("--- %s ping statistics ---\n%d packets transmitted, %d received, %.0f%% packet loss",
		r.Dest, r.Sent, r.Received, 100*r.Loss())
	if r.Received > 0 {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		s += fmt.Sprintf("\nrtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms", ms(r.Min), ms(r.Avg), ms(r.Max), ms(r.Dev))
	}
	return s
}

// Ping sends ICMP echo requests from inside the namespace at nsPath. onReply,
// if set, is called for each reply as it arrives.
func Ping(ctx context.Context, nsPath string, dst netip.Addr, opt PingOptions, onReply func(PingReply)) (PingResult, error) {
	if opt.Count <= 0 {
		opt.Count = 3
	}
	if opt.Interval <= 0 {
		opt.Interval = time.Second
	}
	if opt.Timeout <= 0 {
		opt.Timeout = time.Second
	}
	if opt.Size <= 0 {
		opt.Size = 56
	}
	if opt.Size < 8 {
		opt.Size = 8 // room for the send timestamp
	}
	res := PingResult{Dest: dst}
	if !dst.Is4() {
		return res, fmt.Errorf("the built-in ping speaks IPv4 only; %s is not IPv4", dst)
	}
	var conn *net.IPConn
	err := InNetns(nsPath, func() error {
		c, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return err
		}
		conn = c.(*net.IPConn)
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("open ICMP socket: %w", err)
	}
	defer conn.Close()
	if opt.DontFragment {
		if err := setDontFragment(conn); err != nil {
			return res, fmt.Errorf("ICMP socket: don't fragment: %w", err)
		}
	}
	pc := ipv4.NewPacketConn(conn)
	_ = pc.SetControlMessage(ipv4.FlagTTL, true)

	id := int(rand.Uint32() & 0xffff)
	sentAt := map[int]time.Time{}
	replies := make(chan PingReply, opt.Count)
	icmpErrs := make(chan string, opt.Count)
	go receiveEchoReplies(pc, id, dst, replies, icmpErrs)

	payload := make([]byte, opt.Size)
	seen := map[int]bool{}
	for seq := 1; seq <= opt.Count; seq++ {
		now := time.Now()
		binary.BigEndian.PutUint64(payload, uint64(now.UnixNano()))
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: payload}}
		b, _ := msg.Marshal(nil)
		if _, err := conn.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
		sentAt[seq] = now
		res.Sent++
		// Between requests wait one interval; after the last, up to Timeout
		// for the replies still missing.
		wait := opt.Interval
		if seq == opt.Count {
			wait = opt.Timeout
		}
		timer := time.NewTimer(wait)
	collect:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				finishPing(&res)
				return res, ctx.Err()
			case r := <-replies:
				if seen[r.Seq] || sentAt[r.Seq].IsZero() {
					continue
				}
				seen[r.Seq] = true
				res.Received++
				res.Replies = append(res.Replies, r)
				if onReply != nil {
					onReply(r)
				}
				if seq == opt.Count && res.Received == opt.Count {
					timer.Stop()
					break collect
				}
			case e := <-icmpErrs:
				res.Errors = append(res.Errors, e)
			case <-timer.C:
				break collect
			}
		}
	}
	finishPing(&res)
	return res, nil
}

func receiveEchoReplies(pc *ipv4.PacketConn, id int, dst netip.Addr, replies chan<- PingReply, errs chan<- string) {
	buf := make([]byte, 65536)
	for {
		n, cm, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		now := time.Now()
		msg, err := icmp.ParseMessage(1, buf[:n])
		if err != nil {
			continue
		}
		src, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
		src = src.Unmap()
		switch body := msg.Body.(type) {
		case *icmp.Echo:
			if msg.Type != ipv4.ICMPTypeEchoReply || body.ID != id || len(body.Data) < 8 {
				continue
			}
			sent := time.Unix(0, int64(binary.BigEndian.Uint64(body.Data)))
			ttl := 0
			if cm != nil {
				ttl = cm.TTL
			}
			select {
			case replies <- PingReply{Seq: body.Seq, From: src, TTL: ttl, Size: len(body.Data) + 8, RTT: now.Sub(sent)}:
			default:
			}
		case *icmp.DstUnreach, *icmp.TimeExceeded:
			// Only report errors about our own requests: the quoted header's
			// destination is dst.
			var data []byte
			if b, ok := body.(*icmp.DstUnreach); ok {
				data = b.Data
			} else {
				data = body.(*icmp.TimeExceeded).Data
			}
			if len(data) >= 20 && netip.AddrFrom4([4]byte(data[16:20])) == dst {
				e := fmt.Sprintf("From %s: %v", src, msg.Type)
				if n >= 8 && buf[0] == 3 && buf[1] == 4 {
					// RFC 1191 §4: the next-hop MTU is in the second half
					// of the header's unused word.
					e = fmt.Sprintf("From %s: fragmentation needed, next-hop MTU %d", src, binary.BigEndian.Uint16(buf[6:8]))
				}
				select {
				case errs <- e:
				default:
				}
			}
		}
	}
}

func finishPing(r *PingResult) {
	if len(r.Replies) == 0 {
		return
	}
	sort.Slice(r.Replies, func(i, j int) bool { return r.Replies[i].Seq < r.Replies[j].Seq })
	var sum, sumSq float64
	r.Min = r.Replies[0].RTT
	for _, x := range r.Replies {
		r.Min = min(r.Min, x.RTT)
		r.Max = max(r.Max, x.RTT)
		f := float64(x.RTT)
		sum += f
		sumSq += f * f
	}
	n := float64(len(r.Replies))
	mean := sum / n
	r.Avg = time.Duration(mean)
	r.Dev = time.Duration(math.Sqrt(math.Max(0, sumSq/n-mean*mean)))
}

// setDontFragment makes the socket set DF and refuse datagrams larger than
// the path MTU it knows (IP_PMTUDISC_DO).
func setDontFragment(c *net.IPConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
	}); err != nil {
		return err
	}
	return serr
}
