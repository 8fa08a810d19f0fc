package namespace_test

import (
	"os"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/ipseclab/ipseclab/internal/namespace"
	"github.com/ipseclab/ipseclab/internal/testenv"
	"github.com/ipseclab/ipseclab/internal/testenv/netenv"
)

// Many switches into a namespace leave no thread of the process in it: the
// main thread in particular stays in the namespace the process started in.
func TestRunPutsThreadsBack(t *testing.T) {
	testenv.NeedRoot(t)
	name, h := netenv.Netns(t, "threads")
	host, err := netns.GetFromPath("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	for i := 0; i < 200; i++ {
		if err := namespace.Run(namespace.Path(name), func() error {
			cur, err := netns.Get()
			if err != nil {
				return err
			}
			defer cur.Close()
			if !cur.Equal(h) {
				t.Error("fn did not run inside the namespace")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		ns, err := netns.GetFromPath("/proc/self/task/" + task.Name() + "/ns/net")
		if err != nil {
			continue // the thread just exited
		}
		if ns.Equal(h) {
			t.Errorf("thread %s was left in the namespace", task.Name())
		}
		ns.Close()
	}
	if main, err := netns.GetFromPath("/proc/self/ns/net"); err == nil {
		if !main.Equal(host) {
			t.Error("the main thread's namespace changed")
		}
		main.Close()
	}
}
