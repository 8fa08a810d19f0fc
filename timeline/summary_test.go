package timeline

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ipseclab/ipseclab/events"
)

// run's summary fits the terminal too: each expectation wrapped under
// itself, failures and step errors marked.
func TestSummaryFits(t *testing.T) {
	r := events.ScriptResult{
		Expectations: []events.ExpectResult{
			{At: "nat-traversal/lab.yaml:36", Name: "expect phase2-up of connection office on office-gw within 5s", Passed: true,
				Detail: "IPsec SAs established: esp aes128gcm16, SPIs in da1f9a87 out 7b587b03, 10.1.0.0/24 === 192.168.1.10/32, without PFS; ESP in UDP 4500"},
			{At: "nat-traversal/lab.yaml:40", Name: "expect nat-mapping-new on home-nat within 1s", Passed: false, Detail: "no such event"},
		},
		Errors: []string{"step 7 (nat-traversal/lab.yaml:41) nat-flush: home-nat is not a NAT node"},
	}
	var b bytes.Buffer
	New(&b, Options{Width: 80}).Summary(r, "script finished in 1.064s: 1 expectations passed, 1 failed, 1 step errors")
	out := b.String()
	for _, l := range strings.Split(out, "\n") {
		if DisplayWidth(l) > 80 {
			t.Errorf("a summary line is wider than 80 columns: %q", l)
		}
	}
	for _, want := range []string{
		"━━ Summary ━",
		"  ✔ passed  expect phase2-up of connection office on office-gw within 5s\n            (nat-traversal/lab.yaml:36)\n",
		"            IPsec SAs established: esp aes128gcm16, SPIs in da1f9a87 out\n            7b587b03,",
		"  ✘ FAILED  expect nat-mapping-new on home-nat within 1s\n            (nat-traversal/lab.yaml:40)\n            no such event\n",
		"  ✘ ERROR   step 7 (nat-traversal/lab.yaml:41) nat-flush: home-nat is not a NAT",
		"  script finished in 1.064s: 1 expectations passed, 1 failed, 1 step errors\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q:\n%s", want, out)
		}
	}
	if r.OK() {
		t.Error("a result with a failed expectation and a step error is OK")
	}
	if p, f := r.Counts(); p != 1 || f != 1 {
		t.Errorf("counts %d passed, %d failed; want 1 and 1", p, f)
	}
}
