#!/usr/bin/env python3
"""A topology of many web service hosts behind routers, on standard output.

    services-lab.py ROUTERS SWITCHES_PER_ROUTER SERVICES_PER_SWITCH [--list]

A core switch (10.0.0.0/24) holds one namespace host, `sclient`
(10.0.0.200), and routers r0..r{R-1} (10.0.0.1..). Router rI serves
switches rI-s0.. (10.{10+I}.J.0/24, the router at .1), and each switch
holds SERVICES_PER_SWITCH `http` service hosts wI-J-K at 10.{10+I}.J.{K+2}.
sclient's gateway is r0, which routes every other router's 10.{10+I}/16
to it across the core. With --list, prints the service hosts' addresses
instead, one a line. 10 10 100 is the scale benchmark's 10,000 hosts."""

import sys


def main():
    routers, switches, services = (int(a) for a in sys.argv[1:4])
    if routers < 1 or routers > 200 or switches > 256 or services > 250:
        sys.exit("at most 200 routers, 256 switches a router, 250 services a switch")
    if "--list" in sys.argv[4:]:
        for r in range(routers):
            for s in range(switches):
                for h in range(services):
                    print(f"10.{10 + r}.{s}.{h + 2}")
        return
    out = ['name = "many-services"', "", "[[switch]]", 'name = "core"', 'subnet = "10.0.0.0/24"', ""]
    out += ["[[host]]", 'name = "sclient"', 'switch = "core"',
            'address = "10.0.0.200/24"', 'gateway = "10.0.0.1"', ""]
    for r in range(routers):
        ifaces = [f'{{ switch = "core", address = "10.0.0.{r + 1}/24" }}']
        for s in range(switches):
            sw = f"r{r}-s{s}"
            out += ["[[switch]]", f'name = "{sw}"', f'subnet = "10.{10 + r}.{s}.0/24"', ""]
            ifaces.append(f'{{ switch = "{sw}", address = "10.{10 + r}.{s}.1/24" }}')
            for h in range(services):
                out += ["[[service]]", f'name = "w{r}-{s}-{h}"', 'kind = "http"',
                        f'switch = "{sw}"', f'address = "10.{10 + r}.{s}.{h + 2}/24"',
                        f'gateway = "10.{10 + r}.{s}.1"', ""]
        out += ["[[router]]", f'name = "r{r}"', "interfaces = [", ",\n".join(ifaces), "]"]
        if r == 0 and routers > 1:
            routes = ", ".join(f'{{ to = "10.{10 + q}.0.0/16", via = "10.0.0.{q + 1}" }}'
                               for q in range(1, routers))
            out.append(f"routes = [{routes}]")
        out.append("")
    print("\n".join(out))


main()
