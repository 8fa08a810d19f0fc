package impair_test

import (
	"testing"
	"time"
)

func TestSmokePing(t *testing.T) {
	p := newPair(t, pairOpt{})
	pg := newPinger(t, p.a)
	for i := 0; i < 5; i++ {
		rtt, ok, err := pg.ping(p.bAddr, time.Second)
		t.Logf("rtt %v ok %v err %v", rtt, ok, err)
	}
	a, b := p.link.Counters()
	t.Logf("%+v\n%+v", a, b)
}
