//! The crate against the kernel (root only): a namespace made here is one
//! `ip netns` knows, rtnetlink requests inside it take effect, a refused
//! one is named, processes in it are found, and deleting it leaves
//! nothing.

use std::net::IpAddr;
use std::process::Command;

#[test]
#[ignore = "needs root (network namespaces): scripts/test.sh runs it as root"]
fn a_namespace_is_made_wired_searched_and_removed() {
    let name = format!("sn-nstest-{}", std::process::id());
    let ns = namespaces::create(&name).expect("create");
    let listed = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&name));
    assert!(
        namespaces::create(&name).is_err(),
        "a second of the same name"
    );

    let (addrs, refused) = namespaces::within(&ns, || {
        let mut rtnl = namespaces::Rtnl::open().expect("rtnetlink");
        rtnl.set_up(1, None).expect("send");
        rtnl.add_address(1, "10.9.8.7/8".parse().expect("net"), false)
            .expect("send");
        rtnl.add_address(1, "fd00::7/64".parse().expect("net"), true)
            .expect("send");
        rtnl.finish().expect("acknowledged");
        // The same address again: refused, and the error names it.
        rtnl.add_address(1, "10.9.8.7/8".parse().expect("net"), false)
            .expect("send");
        let refused = rtnl.finish().expect_err("a duplicate");
        (rtnl.addresses(1).expect("dump"), refused.to_string())
    })
    .expect("within");
    assert!(
        refused.contains("ip addr add 10.9.8.7/8 dev 1"),
        "{refused}"
    );
    let got: Vec<IpAddr> = addrs.iter().map(|a| a.addr).collect();
    assert!(got.contains(&"10.9.8.7".parse().expect("ip")), "{addrs:?}");
    assert!(got.contains(&"fd00::7".parse().expect("ip")), "{addrs:?}");
    let shown = Command::new("ip")
        .args(["-n", &name, "addr", "show", "dev", "lo"])
        .output()
        .expect("ip");
    assert!(String::from_utf8_lossy(&shown.stdout).contains("10.9.8.7/8"));

    let mut sleeper = Command::new("ip")
        .args(["netns", "exec", &name, "sleep", "30"])
        .spawn()
        .expect("sleep");
    let mut found = Vec::new();
    for _ in 0..100 {
        found = namespaces::pids(&[&name]).remove(&name).unwrap_or_default();
        if !found.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(found.len(), 1, "the sleep in it");

    drop(ns);
    namespaces::delete(&name).expect("delete");
    assert!(!namespaces::exists(&name));
    namespaces::delete(&name).expect("absent is fine");
}
