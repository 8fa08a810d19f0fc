package linux

import (
	"fmt"
	"os"
	"strings"
)

// sysctlSetting is a sysctl the data plane changed, kept open in the
// namespace where it was changed, with the value to put back.
type sysctlSetting struct {
	f   *os.File
	old []byte
}

// setAcceptLocal sets net.ipv4.conf.all.accept_local in the calling thread's
// namespace. With custom rules, such as those of routes_linux.go, the kernel
// validates the source of every packet it receives by a second, reverse route
// lookup through every rule (fib_validate_source), unless rp_filter is off, as
// it is in a lab, and accept_local on. Over protocol 50, where each ESP packet
// is routed on its own, that lookup cost 5% of the CPU. The price is that a
// packet claiming one of the node's own addresses as its source is no longer
// refused as a martian. Where rp_filter is on for all interfaces, as on many
// hosts that run the daemon outside a lab, every interface does the full check
// anyway: the setting would only loosen it, so it is left alone and
// setAcceptLocal returns nil.
func setAcceptLocal() (*sysctlSetting, error) {
	rpFilter, err := os.ReadFile("/proc/sys/net/ipv4/conf/all/rp_filter")
	if err != nil {
		return nil, fmt.Errorf("rp_filter: %w", err)
	}
	if strings.TrimSpace(string(rpFilter)) != "0" {
		return nil, nil
	}
	f, err := os.OpenFile("/proc/sys/net/ipv4/conf/all/accept_local", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("accept_local: %w", err)
	}
	old := make([]byte, 16)
	n, err := f.ReadAt(old, 0)
	if n == 0 {
		f.Close()
		return nil, fmt.Errorf("accept_local: %w", err)
	}
	if _, err := f.WriteAt([]byte("1"), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("accept_local: %w", err)
	}
	return &sysctlSetting{f: f, old: old[:n]}, nil
}

// restore puts the old value back; it is safe to call again.
func (s *sysctlSetting) restore() error {
	if s.f == nil {
		return nil
	}
	_, err := s.f.WriteAt(s.old, 0)
	s.f.Close()
	s.f = nil
	return err
}
