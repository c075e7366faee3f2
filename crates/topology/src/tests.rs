//! The reference lab parses; every kind of mistake gets a located diagnostic.

use super::*;
use std::net::Ipv4Addr;

fn errors(src: &str) -> Vec<Diagnostic> {
    match parse(src, "lab.toml") {
        Ok(_) => panic!("expected errors for:\n{src}"),
        Err(e) => e.diagnostics,
    }
}

fn one_error(src: &str) -> Diagnostic {
    let mut e = errors(src);
    assert_eq!(e.len(), 1, "{e:#?}");
    e.remove(0)
}

const TWO_HOSTS: &str = r#"
name = "t"
[[switch]]
name = "lan"
subnet = "10.0.0.0/24"

[[host]]
name = "a"
switch = "lan"
address = "10.0.0.1/24"

[[host]]
name = "b"
switch = "lan"
address = "10.0.0.2/24"
"#;

#[test]
fn reference_lab_matches_the_contract() {
    let lab = reference_lab();
    assert_eq!(lab.name, "reference");
    let names: Vec<&str> = lab.switches.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["home", "office", "isp", "dc"]);
    let alice = lab.host("alice").expect("alice");
    assert_eq!(
        alice.address,
        HostAddress::Static("192.168.1.10/24".parse().expect("cidr"))
    );
    assert_eq!(alice.gateway, Some(Ipv4Addr::new(192, 168, 1, 1)));
    assert_eq!(lab.host("bob").map(|b| b.address), Some(HostAddress::Dhcp));
    assert_eq!(lab.host("carol").map(|c| c.switch.as_str()), Some("office"));
    assert_eq!(lab.routers.len(), 3);
    assert_eq!(lab.services.len(), 9);
    let ns2 = lab.services.iter().find(|s| s.name == "example-ns2");
    assert_eq!(
        ns2.map(|s| s.address.addr()),
        Some(Ipv4Addr::new(203, 0, 113, 56))
    );
    let isp_gw = lab
        .routers
        .iter()
        .find(|r| r.name == "isp-gw")
        .expect("isp-gw");
    assert!(isp_gw.interfaces.iter().any(|i| matches!(&i.attachment, Attachment::Tun { peer, .. } if *peer == Ipv4Addr::new(198, 18, 0, 2))));
    let home_gw = lab
        .routers
        .iter()
        .find(|r| r.name == "home-gw")
        .expect("home-gw");
    let nat = home_gw.nat.as_ref().expect("home-gw masquerades");
    assert_eq!(
        (
            nat.outside.as_str(),
            nat.filtering,
            nat.ports,
            nat.max_entries
        ),
        (
            "isp",
            NatFiltering::AddressAndPortDependent,
            (1024, 65535),
            65536
        )
    );
    assert_eq!(
        (
            nat.udp_timeout.as_secs(),
            nat.tcp_established_timeout.as_secs(),
            nat.tcp_transitory_timeout.as_secs(),
            nat.icmp_timeout.as_secs()
        ),
        (300, 7440, 240, 60)
    );
    let sw = lab.switch("home").expect("home");
    assert_eq!(
        (
            sw.mtu,
            sw.ageing.as_secs(),
            sw.mac_table_size,
            sw.multicast_snooping
        ),
        (1500, 300, 8192, true)
    );
}

#[test]
fn defaults_are_filled_in() {
    let t = parse(TWO_HOSTS, "lab.toml").expect("valid");
    let a = t.host("a").expect("a");
    assert_eq!(
        (a.mtu, a.vlan, a.offload, a.txqueuelen),
        (1500, 1, true, 10_000)
    );
    assert_eq!(a.mac, wire::Mac::local_from("a"));
}

#[test]
fn unknown_key_names_line_column_and_suggests() {
    let src = TWO_HOSTS.replace("address = \"10.0.0.2/24\"", "adress = \"10.0.0.2/24\"");
    let d = errors(&src).remove(0);
    assert_eq!((d.file.as_str(), d.line), ("lab.toml", 15));
    assert_eq!(d.key, "host \"b\".adress");
    assert_eq!(d.message, "unknown key `adress`");
    let hint = d.hint.clone().expect("hint");
    assert!(hint.contains("did you mean `address`"), "{hint}");
    assert!(d.to_string().starts_with("lab.toml:15:"), "{d}");
}

#[test]
fn duplicate_names_are_reported_at_the_second() {
    let d = one_error(&TWO_HOSTS.replace("name = \"b\"", "name = \"a\""));
    assert_eq!(d.line, 13);
    assert!(
        d.message.contains("already used by host \"a\""),
        "{}",
        d.message
    );
}

#[test]
fn dangling_switch_reference_suggests_the_near_name() {
    let d = one_error(&TWO_HOSTS.replace(
        "switch = \"lan\"\naddress = \"10.0.0.2/24\"",
        "switch = \"lam\"\naddress = \"10.0.0.2/24\"",
    ));
    assert_eq!(d.key, "host \"b\".switch");
    assert_eq!((d.line, d.column), (14, 10));
    assert_eq!(d.hint.as_deref(), Some("did you mean `lan`?"));
}

#[test]
fn bad_cidrs_and_addresses_outside_the_subnet() {
    let d = one_error(&TWO_HOSTS.replace("10.0.0.2/24", "10.0.0.300/24"));
    assert!(
        d.message.contains("not an IPv4 address with a prefix"),
        "{d}"
    );
    let d = one_error(&TWO_HOSTS.replace("10.0.0.2/24", "10.9.0.2/24"));
    assert!(d.message.contains("not an address of switch `lan`"), "{d}");
    let d = one_error(&TWO_HOSTS.replace("10.0.0.2/24", "10.0.0.1/24"));
    assert!(
        d.message
            .contains("already used on switch `lan` by host \"a\""),
        "{d}"
    );
    let d = one_error(&TWO_HOSTS.replace("10.0.0.2/24", "10.0.0.255/24"));
    assert!(d.message.contains("broadcast"), "{d}");
    let d = one_error(&TWO_HOSTS.replace("subnet = \"10.0.0.0/24\"", "subnet = \"10.0.0.1/24\""));
    assert_eq!(
        d.hint.as_deref(),
        Some("a subnet is written with its network address: 10.0.0.0/24")
    );
}

#[test]
fn overlapping_subnets_are_rejected() {
    let src = format!("{TWO_HOSTS}\n[[switch]]\nname = \"other\"\nsubnet = \"10.0.0.128/25\"\n");
    let d = one_error(&src);
    assert_eq!(d.key, "switch \"other\".subnet");
    assert!(
        d.message.contains("overlaps 10.0.0.0/24 of switch `lan`"),
        "{d}"
    );
}

#[test]
fn all_problems_are_reported_together() {
    let src = r#"
[[switch]]
name = "Bad Name"
subnet = "nope"
mtu = 10
[[host]]
name = "h"
switch = "missing"
address = "dhcp"
gateway = "10.0.0.1"
vlan = 5000
tagged_vlans = [10, 4095]
"#;
    let e = errors(src);
    let keys: Vec<&str> = e.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "switch name",
            "switch \"Bad Name\".subnet",
            "switch \"Bad Name\".mtu",
            "host \"h\".switch",
            "host \"h\".gateway",
            "host \"h\".vlan",
            "host \"h\".tagged_vlans"
        ],
        "{e:#?}"
    );
}

#[test]
fn syntax_and_type_errors_are_located() {
    let d = one_error("[[switch]]\nname = \"a\"\nmtu = \"big\"\n");
    assert_eq!(d.line, 3);
    let d = one_error("[[switch]\nname = 1\n");
    assert_eq!(d.line, 1);
    let d = one_error("[[host]]\nname = \"x\"\n");
    assert_eq!(d.message, "`switch` is required here", "{d}");
}

#[test]
fn every_type_error_is_reported_at_once_with_its_line_a_caret_and_plain_words() {
    let src = "\
name = \"t\"
[[switch]]
name = \"lan\"
mtu = \"1500\"
ageing_secs = \"300\"
[[host]]
name = \"a\"
switch = \"lan\"
address = \"10.0.0.1/24\"
vlan = true
adress = 5
[[router]]
name = \"r\"
interfaces = [{ switch = \"lan\", address = \"10.0.0.254/24\", mtu = \"9000\" }]
";
    let e = errors(src);
    let said: Vec<(&str, &str)> = e
        .iter()
        .map(|d| (d.key.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        said,
        [
            (
                "switch \"lan\".mtu",
                "expected a whole number, found the text \"1500\""
            ),
            (
                "switch \"lan\".ageing_secs",
                "expected a whole number, found the text \"300\""
            ),
            ("host \"a\".vlan", "expected a whole number, found `true`"),
            ("host \"a\".adress", "unknown key `adress`"),
            (
                "router \"r\".interfaces[1].mtu",
                "expected a whole number, found the text \"9000\""
            ),
        ],
        "{e:#?}"
    );
    assert_eq!(
        e[0].to_string(),
        "lab.toml:4:7: switch \"lan\".mtu: expected a whole number, found the text \"1500\"\n  |\n4 | mtu = \"1500\"\n  |       ^^^^^^\n  hint: write the number without quotes: `mtu = 1500`"
    );
    // The most common TOML mistake, in words a person uses.
    let d = one_error("[switch]\nname = \"lan\"\n");
    assert_eq!(
        (d.key.as_str(), d.message.as_str(), d.hint.as_deref()),
        (
            "switch",
            "`[switch]` is one table, but a lab has a list of them",
            Some("write `[[switch]]`, with two brackets, before each one")
        )
    );
}

#[test]
fn router_and_service_references_are_checked() {
    let src = format!(
        r#"{TWO_HOSTS}
[[router]]
name = "gw"
interfaces = [{{ switch = "lan", address = "10.0.0.254/24" }}, {{ tun = "host", address = "198.18.0.1/30" }}]
routes = [{{ to = "0.0.0.0/0", via = "192.0.2.1" }}]
nat = {{ outside = "wan" }}

[[service]]
name = "web"
kind = "htp"
switch = "lan"
address = "10.0.0.80/24"

[[service]]
name = "lb"
kind = "http-lb"
switch = "lan"
address = "10.0.0.81/24"
backends = ["nobody"]
"#
    );
    let keys: Vec<String> = errors(&src).into_iter().map(|d| d.key).collect();
    assert_eq!(
        keys,
        [
            "router \"gw\".interfaces.tun",
            "router \"gw\".routes.via",
            "router \"gw\".nat.outside",
            "service \"web\".kind",
            "service \"lb\".backends"
        ]
    );
}

#[test]
fn missing_file_is_a_diagnostic() {
    let e = load(std::path::Path::new("/nonexistent/lab.toml")).expect_err("missing");
    assert!(e.to_string().contains("/nonexistent/lab.toml"), "{e}");
}

#[test]
fn a_key_another_kind_takes_is_an_error_at_the_key() {
    let text = r#"
name = "kinds"
[[switch]]
name = "lan"
subnet = "10.0.0.0/24"
[[service]]
name = "e"
kind = "echo"
switch = "lan"
address = "10.0.0.7/24"
body_size = 100
"#;
    let err = crate::parse(text, "kinds.toml").expect_err("echo has no body_size");
    let d = &err.diagnostics[0];
    assert_eq!((d.line, d.key.as_str()), (11, "service \"e\".body_size"));
    assert!(
        d.message.contains("a `echo` service has no `body_size`"),
        "{}",
        d.message
    );
    assert!(
        d.hint
            .as_deref()
            .unwrap_or("")
            .contains("`body_size` is for http services"),
        "{:?}",
        d.hint
    );
}

#[test]
fn resolver_settings_are_read_and_typed() {
    let lab = |extra: &str| {
        format!(
            r#"
name = "r"
[[switch]]
name = "lan"
subnet = "10.0.0.0/24"
[[service]]
name = "dns"
kind = "dns-resolver"
switch = "lan"
address = "10.0.0.53/24"
root_hints = ["10.0.0.54"]
{extra}
"#
        )
    };
    let settings = |t: &Topology| match &t.services[0].settings {
        ServiceSettings::DnsResolver(s) => s.clone(),
        other => panic!("{other:?}"),
    };
    let t = crate::parse(&lab(""), "r.toml").expect("defaults");
    assert!(settings(&t).case_randomisation);
    let t = crate::parse(&lab("case_randomisation = false"), "r.toml").expect("off");
    assert!(!settings(&t).case_randomisation);
    let d = one_error(&lab("case_randomisation = \"no\""));
    assert_eq!(d.line, 12, "{d:?}");
    let t =
        crate::parse(&lab("cache_size = 10\nupstream_timeout_ms = 300"), "r.toml").expect("set");
    assert_eq!(
        (settings(&t).cache_size, settings(&t).upstream_timeout_ms),
        (10, 300)
    );
    assert_eq!(
        settings(&crate::parse(&lab(""), "r.toml").expect("d")).upstream_timeout_ms,
        800
    );
    assert!(!settings(&t).serve_stale);
    assert!(!settings(&t).prefetch);
    let t = crate::parse(&lab("serve_stale = true\nprefetch = true"), "r.toml").expect("stale");
    assert!(settings(&t).serve_stale && settings(&t).prefetch);
    let d = one_error(&lab("upstream_timeout_ms = 20"));
    assert_eq!(
        (d.line, d.key.as_str()),
        (12, "service \"dns\".upstream_timeout_ms"),
        "{d:?}"
    );
    // DNS64: off unless asked for, its prefix a /96.
    assert_eq!(settings(&t).dns64, None);
    let t = crate::parse(&lab("dns64 = \"64:ff9b::/96\""), "r.toml").expect("dns64");
    assert_eq!(
        settings(&t).dns64,
        Some("64:ff9b::/96".parse().expect("net"))
    );
    let d = one_error(&lab("dns64 = \"64:ff9b::/64\""));
    assert_eq!(
        (d.line, d.key.as_str()),
        (12, "service \"dns\".dns64"),
        "{d:?}"
    );
    assert!(d.message.contains("is not a /96 network"), "{d:?}");
}

#[test]
fn balancer_settings_are_read_and_their_mistakes_located() {
    let lab = |extra: &str| {
        format!(
            r#"
name = "b"
[[switch]]
name = "lan"
subnet = "10.0.0.0/24"
[[host]]
name = "py"
switch = "lan"
address = "10.0.0.5/24"
[[service]]
name = "web"
kind = "http"
switch = "lan"
address = "10.0.0.80/24"
[[service]]
name = "lb"
kind = "http-lb"
switch = "lan"
address = "10.0.0.10/24"
{extra}
"#
        )
    };
    let settings = |t: &Topology| match &t.services[1].settings {
        ServiceSettings::HttpLb(s) => s.clone(),
        other => panic!("{other:?}"),
    };
    let t = crate::parse(
        &lab(
            r#"backends = ["web", "py:8000", "10.0.0.9:81", "[2001:db8::9]:82", "2001:db8::8"]
weights = [3, 1, 1, 1, 1]
algorithm = "least-connections"
health_check = "tcp"
health_fall = 4
retries = 0
sticky_cookie = "srv""#,
        ),
        "b.toml",
    )
    .expect("valid");
    let s = settings(&t);
    let backends: Vec<(String, u16, u32)> = s
        .backends
        .iter()
        .map(|b| (b.target.clone(), b.port, b.weight))
        .collect();
    assert_eq!(
        backends,
        [
            ("web".to_owned(), 80, 3),
            ("py".to_owned(), 8000, 1),
            ("10.0.0.9".to_owned(), 81, 1),
            ("2001:db8::9".to_owned(), 82, 1),
            ("2001:db8::8".to_owned(), 80, 1)
        ]
    );
    assert_eq!(s.algorithm, balancer::Algorithm::LeastConnections);
    assert_eq!(
        (s.health_check, s.health.fall, s.retries),
        (HealthCheck::Tcp, 4, 0)
    );
    assert_eq!(s.sticky_cookie.as_deref(), Some("srv"));
    // Defaults.
    let s = settings(&crate::parse(&lab(r#"backends = ["web"]"#), "b.toml").expect("d"));
    assert_eq!(s.algorithm, balancer::Algorithm::RoundRobin);
    assert_eq!(
        s.health_check,
        HealthCheck::Http {
            path: "/".into(),
            status: 200
        }
    );
    assert_eq!((s.health.rise, s.health.fall, s.retries), (2, 3, 2));
    // Mistakes, each at its line, with the fix.
    let d = one_error(&lab("backends = [\"web\"]\nalgorithm = \"round-robbin\""));
    assert_eq!((d.line, d.key.as_str()), (21, "service \"lb\".algorithm"));
    assert!(
        d.hint.as_deref().unwrap_or("").contains("round-robin"),
        "{d:?}"
    );
    let d = one_error(&lab("backends = [\"web\", \"nobody\"]"));
    assert_eq!((d.line, d.key.as_str()), (20, "service \"lb\".backends"));
    let d = one_error(&lab("backends = [\"lb\"]"));
    assert!(d.message.contains("`lb` is not another service"), "{d:?}");
    let d = one_error(&lab("backends = [\"web:0\"]"));
    assert_eq!(d.key, "service \"lb\".backends");
    let d = one_error(&lab("backends = [\"web\"]\nweights = [1, 2]"));
    assert!(d.message.contains("2 weights for 1 backends"), "{d:?}");
    let d = one_error(&lab("backends = [\"web\"]\nalgorithm = \"header-hash\""));
    assert!(
        d.hint.as_deref().unwrap_or("").contains("hash_header"),
        "{d:?}"
    );
    let d = one_error(&lab("backends = [\"web\"]\nhealth_path = \"health\""));
    assert_eq!(d.key, "service \"lb\".health_path");
    let t = crate::parse(
        &lab("backends = [\"web\"]\n[[service.routes]]\nhost = \"API.example.com\"\npath_prefix = \"/v1\"\nbackends = [\"py:8000\"]"),
        "b.toml",
    )
    .expect("a route");
    let r = &settings(&t).routes[0];
    assert_eq!(
        (
            r.host.as_deref(),
            r.path_prefix.as_str(),
            r.backends[0].port
        ),
        (Some("api.example.com"), "/v1", 8000)
    );
    let d = one_error(&lab(
        "backends = [\"web\"]\n[[service.routes]]\npath_prefix = \"v1\"\nbackends = [\"web\"]",
    ));
    assert_eq!(d.key, "service \"lb\".routes.path_prefix");
    let d = one_error(&lab(
        "backends = [\"web\"]\n[[service.routes]]\nhost = \"a.b\"\nbackends = [\"ghost\"]",
    ));
    assert_eq!(d.key, "service \"lb\".routes.backends");
    let d = one_error(&lab("backends = [\"web\"]\ncache_size = 5"));
    assert!(d.message.contains("has no `cache_size`"), "{d:?}");
}

#[test]
fn labs_that_cannot_work_are_errors_with_the_fix() {
    let d = one_error("");
    assert_eq!(
        d.message,
        "the file defines no switch, host or router: there is no lab to run"
    );
    // A DHCP host with nobody serving DHCP on its switch.
    let d = one_error(&format!(
        "{TWO_HOSTS}[[host]]\nname = \"c\"\nswitch = \"lan\"\naddress = \"dhcp\"\n"
    ));
    assert_eq!(
        (d.key.as_str(), d.message.as_str()),
        (
            "host \"c\".address",
            "host `c` takes its address by DHCP, but no router serves DHCP on switch `lan`"
        )
    );
    // Two hosts whose names derive the same MAC (FNV-1a collides).
    let d = one_error(
        "[[switch]]\nname = \"lan\"\nsubnet = \"10.0.0.0/24\"\n\
         [[host]]\nname = \"dmcn\"\nswitch = \"lan\"\naddress = \"10.0.0.1/24\"\n\
         [[host]]\nname = \"fhba\"\nswitch = \"lan\"\naddress = \"10.0.0.2/24\"\n",
    );
    assert_eq!(d.key, "host \"fhba\".mac");
    assert!(
        d.message.starts_with("host `fhba` has the MAC address "),
        "{d:?}"
    );
    assert!(d.message.ends_with(" of host `dmcn`"), "{d:?}");
    // A router: a route with host bits, the whole Internet through the
    // machine's uplink, two DHCP servers on one switch.
    let router = |extra: &str| {
        format!(
            "[[switch]]\nname = \"lan\"\nsubnet = \"10.0.0.0/24\"\n\
             [[router]]\nname = \"r\"\n\
             [[router.interfaces]]\nswitch = \"lan\"\naddress = \"10.0.0.1/24\"\n{extra}"
        )
    };
    let d = one_error(&router(
        "[[router.routes]]\nto = \"10.9.0.1/16\"\nvia = \"10.0.0.9\"\n",
    ));
    assert_eq!(
        (d.message.as_str(), d.hint.as_deref()),
        (
            "`10.9.0.1/16` has host bits set: a route is to a network",
            Some("did you mean `10.9.0.0/16`?")
        )
    );
    let d = one_error(&router(
        "[[router.routes]]\nto = \"10.9.0.0/16\"\nvia = \"10.0.0.1\"\n",
    ));
    assert_eq!(
        (d.key.as_str(), d.message.as_str()),
        (
            "router \"r\".routes.via",
            "next hop 10.0.0.1 is this router's own address"
        )
    );
    let d = one_error(&router(
        "[[router.interfaces]]\ntun = \"host\"\naddress = \"198.18.0.1/30\"\npeer = \"198.18.0.2\"\nhost_routes = [\"0.0.0.0/0\"]\n",
    ));
    assert_eq!(d.key, "router \"r\".interfaces.host_routes");
    assert!(
        d.message
            .contains("would send all of the machine's traffic"),
        "{d:?}"
    );
    let d = one_error(&router(
        "[[router.dhcp]]\nswitch = \"lan\"\nrange = \"10.0.0.1-10.0.0.99\"\n",
    ));
    assert_eq!(
        (d.key.as_str(), d.message.as_str()),
        (
            "router \"r\".dhcp.range",
            "the range 10.0.0.1-10.0.0.99 holds 10.0.0.1, router `r`'s address"
        )
    );
    let d = one_error(
        "[[switch]]\nname = \"lan\"\nsubnet = \"10.0.0.0/24\"\n\
         [[router]]\nname = \"r\"\nnat = { outside = \"lan\" }\n\
         [[router.interfaces]]\nswitch = \"lan\"\naddress = \"10.0.0.1/24\"\n\
         [[router.forwards]]\nprotocol = \"tcp\"\nport = 80\nto = \"10.7.0.5:80\"\n",
    );
    assert_eq!(
        (d.key.as_str(), d.message.as_str()),
        (
            "router \"r\".forwards.to",
            "10.7.0.5 is on none of router `r`'s networks and none it routes to"
        )
    );
    let dhcp = "[[router.dhcp]]\nswitch = \"lan\"\nrange = \"10.0.0.100-10.0.0.199\"\n";
    let d = one_error(&format!(
        "{}[[router]]\nname = \"r2\"\n[[router.interfaces]]\nswitch = \"lan\"\naddress = \"10.0.0.2/24\"\n{dhcp}",
        router(dhcp)
    ));
    assert_eq!(
        (d.key.as_str(), d.message.as_str()),
        (
            "router \"r2\".dhcp.switch",
            "switch `lan` already has a DHCP server (router `r`): two would hand out conflicting leases"
        )
    );
}

#[test]
fn links_are_impaired_as_written_and_bad_knobs_are_errors_where_written() {
    let lab = parse(
        &format!(
        "seed = 9\n{TWO_HOSTS}impair = {{ delay = \"50ms\", loss = \"1%\", rate = \"10mbit\" }}\n"
    ),
        "lab.toml",
    )
    .expect("valid");
    assert_eq!(lab.seed, 9);
    let b = lab.host("b").expect("b");
    assert_eq!(b.impair.delay, std::time::Duration::from_millis(50));
    assert_eq!(b.impair.rate, Some(10_000_000));
    assert!(lab.host("a").expect("a").impair.is_none());

    let d = one_error(&format!(
        "{TWO_HOSTS}impair = {{ delay = \"50ms\", rate = \"10mbps\" }}\n"
    ));
    assert_eq!(
        (d.key.as_str(), d.message.as_str(), d.hint.as_deref()),
        (
            "host \"b\".impair.rate",
            "`10mbps` is ambiguous: tc reads \"bps\" as bytes per second",
            Some("write bits per second, e.g. \"10mbit\"")
        )
    );
    assert_eq!((d.line, d.column), (16, 35), "at the value");
    let d = one_error(&format!("{TWO_HOSTS}impair = {{ reorder = \"5%\" }}\n"));
    assert_eq!(d.key, "host \"b\".impair");
    assert!(d.message.starts_with("reordering needs a delay"), "{d:?}");
    let d = one_error(&format!("{TWO_HOSTS}impair = {{ latency = \"5ms\" }}\n"));
    assert_eq!(d.message, "unknown key `latency`", "{d:?}");
}

/// Every ```toml block of the docs, as raw TOML: its syntax, keys and
/// types are what the parser takes (a snippet may be part of a lab, so
/// references between nodes are not checked).
#[test]
fn every_toml_snippet_in_the_docs_uses_real_keys() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs") {
        files.push(entry.expect("entry").path());
    }
    let mut checked = 0;
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(file).expect("doc");
        for (i, block) in text.split("```toml\n").skip(1).enumerate() {
            let snippet = block.split("```").next().unwrap_or_default();
            if let Err(e) = toml::from_str::<crate::raw::File>(snippet) {
                panic!("{} snippet {}: {e}\n{snippet}", file.display(), i + 1);
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} snippets found");
}

#[test]
fn every_example_lab_is_valid_and_says_what_to_try() {
    for (name, text) in EXAMPLES {
        let lab = parse(text, name).unwrap_or_else(|e| panic!("example {name}:\n{e}"));
        assert_eq!(&lab.name, name);
        let level = text.lines().next().unwrap_or_default();
        assert!(level.starts_with("# Level "), "{name}: {level}");
        assert!(
            text.contains("#   sudo scratchnet"),
            "{name} says what to try"
        );
    }
}

/// docker/split-*.toml are the reference lab cut in two at the `isp`
/// switch: together they hold the same switches, hosts, routers and
/// services, at the same addresses (the TUN uplink aside).
#[test]
fn the_split_lab_is_the_reference_lab_in_two_halves() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docker");
    let halves: Vec<Topology> = ["split-home.toml", "split-dc.toml"]
        .iter()
        .map(|f| load(&root.join(f)).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let shape = |labs: &[&Topology]| {
        let mut items: Vec<String> = Vec::new();
        for lab in labs {
            for s in &lab.switches {
                items.push(format!("switch {} {:?}", s.name, s.subnet));
            }
            for h in &lab.hosts {
                items.push(format!("host {} {:?}", h.name, h.address));
            }
            for s in &lab.services {
                items.push(format!("service {} {}", s.name, s.address));
            }
            for r in &lab.routers {
                for i in r
                    .interfaces
                    .iter()
                    .filter(|i| matches!(i.attachment, Attachment::Switch(_)))
                {
                    items.push(format!(
                        "router {} {:?} {}",
                        r.name, i.attachment, i.address
                    ));
                }
            }
        }
        items.sort();
        items.dedup();
        items
    };
    let reference = reference_lab();
    assert_eq!(shape(&[&halves[0], &halves[1]]), shape(&[&reference]));
    for half in &halves {
        let isp = half.switch("isp").expect("isp");
        assert_eq!(isp.tunnels.len(), 1, "{}", half.name);
        assert_eq!(isp.tunnels[0].vni, 100);
    }
}

#[test]
fn the_reference_lab_is_dual_stack_as_the_contract_says() {
    let lab = reference_lab();
    let prefixes: Vec<String> = lab
        .switches
        .iter()
        .filter_map(|s| s.subnet6.map(|n| n.to_string()))
        .collect();
    assert_eq!(
        prefixes,
        [
            "2001:db8:1::/64",
            "2001:db8:2::/64",
            "2001:db8:100::/64",
            "2001:db8:113::/64"
        ]
    );
    let host6 = |n: &str| lab.host(n).and_then(|h| h.address6);
    assert_eq!(host6("alice"), Some(HostAddress6::Slaac));
    assert_eq!(host6("bob"), Some(HostAddress6::Dhcp6));
    assert_eq!(
        host6("carol"),
        Some(HostAddress6::Static(
            "2001:db8:2::10/64".parse().expect("net")
        ))
    );
    let alice = lab.host("alice").expect("alice");
    assert_eq!(
        lab.host_address6(alice).map(|a| a.addr().to_string()),
        Some("2001:db8:1:0:53:4eff:fe87:2213".to_owned()),
        "her SLAAC address, from her MAC"
    );
    let router = |n: &str| lab.routers.iter().find(|r| r.name == n).expect(n);
    let home = router("home-gw");
    let ra = home.interfaces[0].ra.as_ref().expect("RAs on home");
    assert!(ra.slaac && ra.managed && ra.other);
    assert_eq!(
        ra.rdnss,
        ["2001:db8:100::53"
            .parse::<std::net::Ipv6Addr>()
            .expect("ip")]
    );
    assert_eq!(home.dhcp6[0].switch, "home");
    assert!(home.firewall6.as_ref().is_some_and(|f| f.outside == "isp"));
    let office = router("office-gw");
    let pinholes = &office.firewall6.as_ref().expect("firewall").pinholes;
    assert_eq!(
        pinholes,
        &[PinholeSpec {
            protocol: Protocol::Tcp,
            port: 80,
            to: "2001:db8:2::10".parse().expect("ip"),
        }]
    );
    let web1 = lab
        .services
        .iter()
        .find(|s| s.name == "web1")
        .expect("web1");
    assert_eq!(
        web1.address6.map(|a| a.addr().to_string()),
        Some("2001:db8:113::11".to_owned())
    );
}

#[test]
fn ipv6_mistakes_are_located_with_their_fix() {
    let base = |extra: &str| {
        format!(
            r#"
name = "t"
[[switch]]
name = "lan"
subnet = "10.0.0.0/24"
subnet6 = "2001:db8:1::/64"
[[switch]]
name = "wan"
subnet = "10.9.0.0/24"
subnet6 = "2001:db8:1::/48"
{extra}
"#
        )
    };
    // Overlapping prefixes.
    let d = one_error(&base(""));
    assert!(d.message.contains("overlaps 2001:db8:1::/48"), "{d:?}");
    let ok = |extra: &str| base(extra).replace("2001:db8:1::/48", "2001:db8:9::/64");
    for (extra, key, says) in [
        // A SLAAC host with no router advertising on its switch.
        (
            "[[host]]\nname = \"h\"\nswitch = \"lan\"\naddress = \"10.0.0.5/24\"\naddress6 = \"slaac\"",
            "host \"h\".address6",
            "no router advertises a prefix",
        ),
        // A DHCPv6 host with no DHCPv6 server.
        (
            "[[host]]\nname = \"h\"\nswitch = \"lan\"\naddress = \"10.0.0.5/24\"\naddress6 = \"dhcp6\"",
            "host \"h\".address6",
            "no router serves DHCPv6",
        ),
        // SLAAC needs a /64.
        (
            "[[switch]]\nname = \"big\"\nsubnet6 = \"2001:db8:50::/56\"\n[[router]]\nname = \"r\"\ninterfaces = [{ switch = \"big\", address = \"10.50.0.1/24\", address6 = \"2001:db8:50::1/56\", ra = {} }]",
            "router \"r\".interfaces.address6",
            "SLAAC needs a /64",
        ),
        // A next hop that is the router's own IPv6 address.
        (
            "[[router]]\nname = \"r\"\ninterfaces = [{ switch = \"lan\", address = \"10.0.0.1/24\", address6 = \"2001:db8:1::1/64\" }]\nroutes = [{ to = \"::/0\", via = \"2001:db8:1::1\" }]",
            "router \"r\".routes.via",
            "this router's own address",
        ),
        // Families mixed in a route.
        (
            "[[router]]\nname = \"r\"\ninterfaces = [{ switch = \"lan\", address = \"10.0.0.1/24\", address6 = \"2001:db8:1::1/64\" }]\nroutes = [{ to = \"::/0\", via = \"10.0.0.254\" }]",
            "router \"r\".routes.via",
            "not of the family",
        ),
        // A pinhole to an address outside the router.
        (
            "[[router]]\nname = \"r\"\ninterfaces = [{ switch = \"lan\", address = \"10.0.0.1/24\", address6 = \"2001:db8:1::1/64\" }, { switch = \"wan\", address = \"10.9.0.1/24\", address6 = \"2001:db8:9::1/64\" }]\nfirewall6 = { outside = \"wan\", pinholes = [{ protocol = \"tcp\", port = 80, to = \"2001:db8:9::5\" }] }",
            "router \"r\".firewall6.pinholes.to",
            "not on any of the router's inside prefixes",
        ),
        // NAT64 on the NAT's interface.
        (
            "[[router]]\nname = \"r\"\ninterfaces = [{ switch = \"lan\", address = \"10.0.0.1/24\", address6 = \"2001:db8:1::1/64\" }, { switch = \"wan\", address = \"10.9.0.1/24\" }]\nnat = { outside = \"wan\" }\nnat64 = { outside = \"wan\" }",
            "router \"r\".nat64.outside",
            "already hands out that interface's ports",
        ),
        // An IPv6-only host without IPv6.
        (
            "[[host]]\nname = \"h\"\nswitch = \"lan\"\naddress = \"none\"",
            "host \"h\".address",
            "needs an IPv6 one",
        ),
    ] {
        let d = one_error(&ok(extra));
        assert_eq!(d.key, key, "{d:?}");
        assert!(d.message.contains(says), "{says}: {d:?}");
        assert!(d.hint.is_some(), "a fix for {key}");
    }
}

#[test]
fn multicast_snooping_can_be_turned_off_per_switch() {
    let src = "name = \"t\"\n[[switch]]\nname = \"lan\"\nmulticast_snooping = false\n";
    let t = crate::parse(src, "m.toml").expect("valid");
    assert!(!t.switch("lan").expect("lan").multicast_snooping);
    let d = one_error("name = \"t\"\n[[switch]]\nname = \"lan\"\nmulticast_snooping = \"off\"\n");
    assert_eq!(
        (d.line, d.key.as_str()),
        (4, "switch \"lan\".multicast_snooping"),
        "{d}"
    );
}

#[test]
fn an_origins_paths_are_checked_where_they_are_written() {
    let text = r#"
name = "origin"
[[switch]]
name = "lan"
subnet = "10.0.0.0/24"
[[service]]
name = "o"
kind = "http"
switch = "lan"
address = "10.0.0.7/24"
delay_ms = 20
[[service.paths]]
prefix = "static/"
cache_control = "max-age=60"
content_type = "text/css"
size = 100
[[service.paths]]
prefix = "/"
content_type = "css"
last_modified = true
"#;
    let err = crate::parse(text, "origin.toml").expect_err("three mistakes");
    let found: Vec<(usize, &str, &str)> = err
        .diagnostics
        .iter()
        .map(|d| (d.line, d.key.as_str(), d.message.as_str()))
        .collect();
    let expect = [
        (13, "service \"o\".paths.prefix", "a path starts with `/`"),
        (
            19,
            "service \"o\".paths.content_type",
            "`css` is no media type",
        ),
        (
            19,
            "service \"o\".paths.content_type",
            "a `content_type` is for an asset",
        ),
        (
            20,
            "service \"o\".paths.last_modified",
            "it has no modification time",
        ),
    ];
    for (line, key, says) in expect {
        assert!(
            found
                .iter()
                .any(|(l, k, m)| *l == line && *k == key && m.contains(says)),
            "no `{says}` at line {line} {key} in {found:?}"
        );
    }
    assert_eq!(found.len(), expect.len(), "{found:?}");

    let good = text.replace("\"static/\"", "\"/static/\"").replace(
        "content_type = \"css\"\nlast_modified = true\n",
        "vary = \"Accept-Language\"\n",
    );
    let lab = crate::parse(&good, "origin.toml").expect("a good origin");
    let crate::ServiceSettings::Http(http) = &lab.services[0].settings else {
        panic!("an http service");
    };
    assert_eq!(http.delay, std::time::Duration::from_millis(20));
    assert_eq!(http.paths.len(), 2);
    let asset = &http.paths[0];
    assert_eq!(
        (asset.size, asset.content_type.as_deref()),
        (Some(100), Some("text/css"))
    );
    assert!(asset.etag && asset.last_modified);
    let greeting = &http.paths[1];
    assert_eq!(greeting.vary.as_deref(), Some("Accept-Language"));
    assert!(greeting.etag && !greeting.last_modified);
}

#[test]
fn a_zones_geo_views_are_checked_at_their_records() {
    let text = r#"
name = "geo"
[[switch]]
name = "lan"
subnet = "10.0.0.0/24"
[[service]]
name = "ns"
kind = "dns-authoritative"
switch = "lan"
address = "10.0.0.53/24"
[[service.zones]]
origin = "example.com."
records = """
$TTL 300
@   IN SOA ns hostmaster 1 7200 900 1209600 300
@   IN NS  ns
ns  IN A   10.0.0.53
cdn IN A   10.0.0.80
"""
[[service.zones.geo]]
clients = ["10.1.0.0/16"]
records = "cdn 60 IN A 10.1.0.80"
[[service.zones.geo]]
clients = ["europe"]
records = "cdn 60 IN A 10.2.0.80"
[[service.zones.geo]]
clients = ["10.3.0.0/16"]
records = "img 60 IN A 10.3.0.80"
"#;
    let err = crate::parse(text, "geo.toml").expect_err("two bad views");
    let found: Vec<(&str, &str)> = err
        .diagnostics
        .iter()
        .map(|d| (d.key.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].0, "service \"ns\".zones.geo.clients");
    assert!(
        found[1].1.contains("img.example.com. A has no record"),
        "{found:?}"
    );

    let good = text
        .replace("[\"europe\"]", "[\"10.2.0.0/16\"]")
        .replace("img 60", "cdn 60");
    let lab = crate::parse(&good, "geo.toml").expect("three good views");
    let crate::ServiceSettings::DnsAuthoritative(ns) = &lab.services[0].settings else {
        panic!("an authoritative server");
    };
    let cdn = dns::hickory_proto::rr::LowerName::new(&"cdn.example.com.".parse().expect("valid"));
    let a = dns::hickory_proto::rr::RecordType::A;
    let (_, scope) = ns.zones[0]
        .rrset_for(&cdn, a, Some("10.3.4.5".parse().expect("valid")))
        .expect("cdn");
    assert_eq!(scope, dns::Scope::View(16));
}
