#!/bin/sh
# dhclient-script for scratchnet hosts. dhclient runs it inside the host's
# network namespace (ip netns exec), where /etc/resolv.conf is a bind mount
# of /etc/netns/HOST/resolv.conf: it configures the interface and writes
# that file in place, and touches nothing outside the namespace (Debian's
# own script renames a temporary file in /etc, which would escape it).
case "$reason" in
  PREINIT)
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
      {
        echo "# written by scratchnet's dhclient-script from the DHCP lease"
        for ns in $new_domain_name_servers; do echo "nameserver $ns"; done
      } > /etc/resolv.conf
    fi
    ;;
  EXPIRE|FAIL|RELEASE|STOP)
    if [ -n "$old_ip_address" ]; then
      ip -4 addr flush dev "$interface"
    fi
    ;;
esac
exit 0
