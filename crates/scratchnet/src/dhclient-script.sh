#!/bin/sh
# dhclient-script for scratchnet hosts, DHCPv4 (dhclient -4) and DHCPv6
# (dhclient -6). dhclient runs it inside the host's network namespace (ip
# netns exec), where /etc/resolv.conf is a bind mount of
# /etc/netns/HOST/resolv.conf: it configures the interface and writes that
# file in place, and touches nothing outside the namespace (Debian's own
# script renames a temporary file in /etc, which would escape it).

# resolv.conf with the nameservers of one family replaced by $2 (4 or 6
# in $1): a host that leases both keeps both families' servers. Made in
# memory and written in place: a temporary file would be in the
# machine's /etc, shared by every host's client at once.
resolvers() {
  keep=$(grep -v '^#' /etc/resolv.conf 2>/dev/null | if [ "$1" = 4 ]; then grep ':'; else grep -v ':'; fi)
  new=$(
    echo "# written by scratchnet's dhclient-script from the DHCP leases"
    if [ "$1" = 6 ] && [ -n "$keep" ]; then echo "$keep"; fi
    for ns in $2; do echo "nameserver $ns"; done
    if [ "$1" = 4 ] && [ -n "$keep" ]; then echo "$keep"; fi
  )
  printf '%s\n' "$new" > /etc/resolv.conf
}

case "$reason" in
  PREINIT|PREINIT6)
    ip link set dev "$interface" up
    ;;
  BOUND|RENEW|REBIND|REBOOT)
    if [ -n "$old_ip_address" ] && [ "$old_ip_address" != "$new_ip_address" ]; then
      ip -4 addr flush dev "$interface"
    fi
    ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
    for router in $new_routers; do
      ip route replace default via "$router" dev "$interface"
      break
    done
    if [ -n "$new_domain_name_servers" ]; then
      resolvers 4 "$new_domain_name_servers"
    fi
    ;;
  BOUND6|RENEW6|REBIND6|REBOOT6)
    if [ -n "$old_ip6_address" ] && [ "$old_ip6_address" != "$new_ip6_address" ]; then
      ip -6 addr del "$old_ip6_address/$old_ip6_prefixlen" dev "$interface" 2>/dev/null
    fi
    if [ -n "$new_ip6_address" ]; then
      # The lease names the address; the on-link prefix and the default
      # route come from router advertisements, as IPv6 wants.
      ip -6 addr replace "$new_ip6_address/$new_ip6_prefixlen" dev "$interface" \
        valid_lft "${new_max_life:-forever}" preferred_lft "${new_preferred_life:-forever}"
    fi
    if [ -n "$new_dhcp6_name_servers" ]; then
      resolvers 6 "$new_dhcp6_name_servers"
    fi
    ;;
  EXPIRE|FAIL|RELEASE|STOP)
    if [ -n "$old_ip_address" ]; then
      ip -4 addr flush dev "$interface"
    fi
    ;;
  EXPIRE6|RELEASE6|STOP6)
    if [ -n "$old_ip6_address" ]; then
      ip -6 addr del "$old_ip6_address/$old_ip6_prefixlen" dev "$interface" 2>/dev/null
    fi
    ;;
esac
exit 0
