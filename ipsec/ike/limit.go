package ike

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ipseclab/ipseclab/events"
)

// Anyone can send a node first messages, garbage, or messages for SAs it does
// not hold, from any address and as fast as the network carries them. What
// the engine reports about such input goes through one rate limit, so that a
// flood costs the event history, the event log and the terminal a bounded
// amount: at most limitBurst events a second, and once a second a summary
// counting, per kind, what was left out. Everything is counted in Stats all
// the same. Events of peers that proved their address (they answered our
// cookie) and of our own negotiations are never limited.

const limitBurst = 20 // events a second

type eventLimiter struct {
	window     time.Time
	n          int
	suppressed map[events.Kind]uint64 // in this window, reported by the summary
	summary    *timer
}

// publishFor publishes an event about sa: rate-limited while sa is a
// responder's SA whose peer has not yet answered our cookie.
func (e *Engine) publishFor(sa *isakmpSA, ev events.Event) {
	if sa != nil && sa.role == Responder && !sa.proof {
		e.publishLimited(ev)
		return
	}
	e.pub.Publish(ev)
}

// publishLimited publishes an event caused by unauthenticated input, unless
// the limit was reached in this second; then it counts it for the summary.
func (e *Engine) publishLimited(ev events.Event) {
	l, now := &e.limiter, e.clock.Now()
	if now.Sub(l.window) >= time.Second {
		l.window, l.n = now, 0
	}
	if l.n < limitBurst {
		l.n++
		e.pub.Publish(ev)
		return
	}
	e.stats.Suppressed++
	if l.suppressed == nil {
		l.suppressed = map[events.Kind]uint64{}
	}
	l.suppressed[ev.Kind]++
	if l.summary == nil {
		l.summary = e.after(l.window.Add(time.Second).Sub(now), e.publishSuppressed)
	}
}

// publishSuppressed reports what the limit left out of the last second.
func (e *Engine) publishSuppressed() {
	l := &e.limiter
	l.summary = nil
	var total uint64
	kinds := make([]string, 0, len(l.suppressed))
	counts := map[string]uint64{}
	for k, n := range l.suppressed {
		total += n
		kinds = append(kinds, string(k))
		counts[string(k)] = n
	}
	l.suppressed = nil
	if total == 0 {
		return
	}
	sort.Slice(kinds, func(i, j int) bool { return counts[kinds[i]] > counts[kinds[j]] })
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s %d", k, counts[k])
	}
	e.pub.Publish(events.Event{
		Kind: events.Suppressed, Level: events.Warn,
		Message: fmt.Sprintf("%d events caused by unauthenticated input left out in the last second (%s); at most %d a second are shown", total, strings.Join(parts, ", "), limitBurst),
		Explain: "First messages, garbage and messages for unknown SAs can come from anyone, from forged addresses, as fast as the network carries them. Past a few a second they are counted rather than shown, so that a flood cannot fill the timeline, the memory or the disk; the node's counters have every one.",
		Fields:  map[string]any{"suppressed": total, "kinds": counts},
	})
}
