// Package linux opens an ESP data plane inside a Linux network namespace:
// Open creates its TUN device (package tun) and its sockets (package conn),
// and sets up the kernel's policy routing that sends protected traffic into
// the TUN and keeps IPsec's own packets out of it (routes_linux.go), each
// route carrying its SA's inner MTU. It is what wireguard-go leaves to
// wg-quick; package esp stays free of every Linux interface.
package linux
