package labrun

import (
	"github.com/ipseclab/ipseclab/internal/namespace"
)

// The namespace primitives live in internal/namespace, so that the packages
// below the lab runtime (the IPsec stack) use the same ones; labrun re-exports them for its
// callers.
var (
	CreateNetns   = namespace.Create
	DeleteNetns   = namespace.Delete
	ListNetns     = namespace.List
	NetnsPath     = namespace.Path
	InNetns       = namespace.Run
	InNetnsHandle = namespace.RunHandle
)

// NetnsDir is where named network namespaces are bind-mounted.
const NetnsDir = namespace.Dir

// LoopbackUp brings lo up inside the namespace.
var LoopbackUp = namespace.LoopbackUp
