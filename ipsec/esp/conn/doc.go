// Package conn is the outer side of the ESP data plane on Linux: raw IPv4
// sockets for ESP (protocol 50) and AH (protocol 51), and the NAT-T UDP port
// 4500 that ESP-in-UDP (RFC 3948) shares with IKE. Network implements
// esp.Network, as wireguard-go's conn package implements its device's Bind.
//
// Every socket is read and written in batches through Go's poller
// (socket_linux.go: one recvmmsg or sendmmsg for many datagrams); the UDP
// port adds segmentation offload both ways (udp_linux.go: UDP_SEGMENT to
// send a run of ESP packets as one super-packet, UDP_GRO to receive one and
// cut it apart where it lies).
package conn
