package vpnc

// script is the program vpnc runs (its Script setting) to configure the TUN
// device, in place of Debian's vpnc-script, which also rewrites
// /etc/resolv.conf and keeps state under /var/run. vpnc runs it through
// system() inside the node's network namespace, with what Mode Config gave
// in environment variables (vpnc(8), /usr/share/vpnc-scripts/vpnc-script):
// reason (pre-init, connect, disconnect, reconnect), TUNDEV, VPNGATEWAY,
// INTERNAL_IP4_ADDRESS, INTERNAL_IP4_MTU, CISCO_SPLIT_INC and, per network
// i, CISCO_SPLIT_INC_i_ADDR and CISCO_SPLIT_INC_i_MASKLEN.
//
// On connect it puts the address on the device as a /32, sends the
// split-include networks into the device from that address, or, without
// split-include, everything (0.0.0.0/1 and 128.0.0.0/1, which win over the
// node's default route without replacing it) after pinning the gateway's
// own address to the path it has now. It saves the environment for the Go
// side (env -0 into $IPSECLAB_VPNC_DIR/lease.env, NUL-separated, since a
// banner may span lines) and says so on standard output, which vpnc shares
// with its own. On disconnect it removes the gateway's pinned route and the
// file; the device's routes go with the device.
const script = `#!/bin/sh
# Written by ipseclab: vpnc runs this in its node's network namespace to
# apply what Mode Config gave (see vpnc(8)). No DNS changes.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
dir="$IPSECLAB_VPNC_DIR"
case "$reason" in
connect)
	ip link set dev "$TUNDEV" up mtu "${INTERNAL_IP4_MTU:-1412}" || exit 1
	ip addr add "$INTERNAL_IP4_ADDRESS/32" dev "$TUNDEV" || exit 1
	n="${CISCO_SPLIT_INC:-0}"
	if [ "$n" -gt 0 ]; then
		i=0
		while [ "$i" -lt "$n" ]; do
			eval net="\$CISCO_SPLIT_INC_${i}_ADDR/\$CISCO_SPLIT_INC_${i}_MASKLEN"
			ip route replace "$net" dev "$TUNDEV" src "$INTERNAL_IP4_ADDRESS" || exit 1
			i=$((i + 1))
		done
	else
		via=$(ip -o route get "$VPNGATEWAY" | sed -n 's/.* via \([0-9.]*\).*/via \1/p')
		dev=$(ip -o route get "$VPNGATEWAY" | sed -n 's/.* dev \([^ ]*\).*/dev \1/p')
		ip route replace "$VPNGATEWAY/32" $via $dev || exit 1
		echo "$VPNGATEWAY/32 $via $dev" > "$dir/gateway.route"
		ip route replace 0.0.0.0/1 dev "$TUNDEV" src "$INTERNAL_IP4_ADDRESS" || exit 1
		ip route replace 128.0.0.0/1 dev "$TUNDEV" src "$INTERNAL_IP4_ADDRESS" || exit 1
	fi
	env -0 > "$dir/lease.env.tmp" && mv "$dir/lease.env.tmp" "$dir/lease.env"
	echo "ipseclab-vpnc-script: connect $INTERNAL_IP4_ADDRESS on $TUNDEV"
	;;
disconnect)
	if [ -f "$dir/gateway.route" ]; then
		ip route del $(cat "$dir/gateway.route") 2>/dev/null
		rm -f "$dir/gateway.route"
	fi
	ip addr flush dev "$TUNDEV" 2>/dev/null
	rm -f "$dir/lease.env"
	echo "ipseclab-vpnc-script: disconnect $TUNDEV"
	;;
esac
exit 0
`
