// Package labrun is the lab runtime: it deploys a lab (namespaces, links,
// routes, NAT boxes, the IPsec implementation of each gateway) and destroys
// it, runs the lab process that keeps it going (its control socket, the
// script, captures), and holds the client the other verbs talk to it with.
// Ping and the traffic generator run from a node's namespace for the script
// and for the CLI.
//
//	Deploy ─▶ Deployment (namespaces, wires, routes)      state.go: what a lab created, for destroy
//	StartRuntime ─▶ Runtime ─▶ ipsec.go (gateway.go, strongswannode.go, vpncnode.go), natboxes.go, links.go, capture.go
//	                        └▶ script.go (RunScript: steps, expectations, the settle at the end)
//	control.go: the control socket's server and Client
package labrun
