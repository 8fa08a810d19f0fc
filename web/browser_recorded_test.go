package web

// The page on runs of shipped labs recorded with `run --json --keys`,
// served by the real server in this process as `replay --web` serves them
// (no root needed): Aggressive Mode, retransmissions and losses, XAUTH, DPD.

import (
	"context"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ipseclab/ipseclab/labs"
)

// serveRecording serves testdata/NAME.jsonl as `ipseclab replay --web`
// does, with the shipped lab NAME's topology, and returns the page's URL.
func serveRecording(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open("testdata/" + name + ".jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := ReadRecording(f, name+".jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lab, _, err := labs.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(Config{Mode: Replay, Lab: lab})
	srv.Load(recs)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ctx, l)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return URL(l)
}

// openReplay loads a recording on the page and jumps to its end.
func openReplay(t *testing.T, name string) context.Context {
	t.Helper()
	ctx := newTab(t)
	do(t, ctx, chromedp.Navigate(serveRecording(t, name)))
	waitFor(t, ctx, "the recording", `window.ipseclab && ipseclab.model && document.body.dataset.stream === "ended"`, 20*time.Second)
	do(t, ctx, chromedp.Click(chromedp.ID("live")))
	waitEnded(t, ctx, 10*time.Second)
	t.Cleanup(func() {
		if e := eval[int](t, ctx, `ipseclab.errors`); e != 0 {
			t.Errorf("%d errors on the page: %s", e, eval[string](t, ctx, `ipseclab.lastError`))
		}
	})
	return ctx
}

func TestPageRecordedLabs(t *testing.T) {
	t.Run("aggressive-mode", func(t *testing.T) {
		ctx := openReplay(t, "aggressive-mode")
		conn := eval[string](t, ctx, `ipseclab.ladder.selectedConn`)
		names := ikeNames(ladderRows(t, ctx, conn))
		want := []string{"Aggressive Mode 1/3", "Aggressive Mode 2/3", "Aggressive Mode 3/3", "Quick Mode 1/3", "Quick Mode 2/3", "Quick Mode 3/3"}
		if len(names) < len(want) || !slices.Equal(names[:len(want)], want) {
			t.Errorf("ladder of %s: %q, want %q first", conn, names, want)
		}
		text := inspectMessage(t, ctx, conn, "Aggressive Mode 1/3")
		for _, p := range []string{"(SA)", "(KE)", "(NONCE)", "(ID)"} {
			if !strings.Contains(text, p) {
				t.Errorf("Aggressive Mode 1/3 decoded without %s:\n%s", p, text)
			}
		}
		screenshot(t, ctx, "aggressive-mode")
	})
	t.Run("lossy-link", func(t *testing.T) {
		ctx := openReplay(t, "lossy-link")
		rows := ladderRows(t, ctx, "office")
		var retrans, lost int
		for _, r := range rows {
			if r.Retrans != "" {
				retrans++
				if r.Payloads == "" {
					t.Errorf("the retransmission %s has no payloads (those of the message it repeats)", r.Name)
				}
			}
			if r.Lost {
				lost++
			}
		}
		if retrans == 0 || lost == 0 {
			t.Errorf("lossy-link: %d retransmissions, %d lost on the ladder; want some of each", retrans, lost)
		}
		// A retransmission's events carry no packet: the inspector shows
		// the message it repeats.
		ok := eval[bool](t, ctx, `(() => {
			const c = ipseclab.model.conns.get("office");
			const r = c.rows.find((r) => r.retrans && r.proto === "ike");
			const sc = document.getElementById("ladder-scroll");
			ipseclab.ladder.follow = false;
			sc.scrollTop = Math.max(0, r.index * ipseclab.ladder.rowHeight() - 60);
			ipseclab.ladder.lastSig = ""; ipseclab.ladder.draw();
			document.querySelector('.rung.retrans .label .text').click();
			return true })()`)
		if !ok {
			t.Fatal("no retransmission to click")
		}
		waitFor(t, ctx, "the repeated message's packet", `!!document.querySelector("#packet-layers")`, 10*time.Second)
		screenshot(t, ctx, "lossy-link")
	})
	t.Run("xauth-wrong-password", func(t *testing.T) {
		ctx := openReplay(t, "xauth-wrong-password")
		conn := eval[string](t, ctx, `ipseclab.ladder.selectedConn`)
		rows := ladderRows(t, ctx, conn)
		xauth := 0
		for _, r := range rows {
			if strings.HasPrefix(r.Name, "XAUTH") {
				xauth++
			}
			if r.Name == "Delete" && r.Lost {
				t.Errorf("a Delete at the end is called lost: %+v", r)
			}
		}
		if xauth < 4 {
			t.Errorf("%d XAUTH messages on the ladder: %q", xauth, ikeNames(rows))
		}
	})
	t.Run("road-warriors", func(t *testing.T) {
		ctx := openReplay(t, "road-warriors")
		cols := eval[[]string](t, ctx, `ipseclab.model.conns.get("rw").columns.slice().sort()`)
		if want := []string{"gw", "laptop1", "laptop2", "laptop3"}; !slices.Equal(cols, want) {
			t.Errorf("the ladder's lifelines %q, want %q (ESP through the NAT goes to the laptops)", cols, want)
		}
		rows := ladderRows(t, ctx, "rw")
		for _, l := range []string{"laptop1", "laptop2", "laptop3"} {
			var got []string
			for _, r := range rows {
				if r.Proto == "ike" && (r.From == l || r.To == l) && strings.HasPrefix(r.Name, "Aggressive Mode") && r.Recv {
					got = append(got, r.Name)
				}
			}
			if want := []string{"Aggressive Mode 1/3", "Aggressive Mode 2/3", "Aggressive Mode 3/3"}; !slices.Equal(got, want) {
				t.Errorf("%s: %q, want %q", l, got, want)
			}
		}
		screenshot(t, ctx, "road-warriors")
	})
	t.Run("dpd", func(t *testing.T) {
		ctx := openReplay(t, "dpd")
		names := ikeNames(ladderRows(t, ctx, "office"))
		if !slices.Contains(names, "DPD") || !slices.Contains(names, "DPD ack") {
			t.Errorf("no DPD and DPD ack on the ladder: %q", names)
		}
	})
}
