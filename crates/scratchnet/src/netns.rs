//! Network namespaces for hosts: made, wired and removed in-process
//! through rtnetlink (the `namespaces` crate), as `ip netns add`, `ip link
//! set`, `ip addr add` and `ip route add` would, without a process per
//! step; the files `ip netns exec` mounts (/etc/netns/NS); the DHCP
//! clients; and the machine's end of the uplink (with `ip`, the commands
//! a network engineer would type).

use anyhow::{bail, Context, Result};
use ipnet::IpNet;
use namespaces::Rtnl;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use topology::{HostAddress, HostAddress6, HostSpec};

/// Runs `ip ARGS`, turning a failure into an error that quotes the command
/// and what `ip` said.
pub fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!("the `ip` command is missing: install the iproute2 package (apt-get install iproute2)"),
        _ => anyhow::anyhow!("cannot run `ip`: {e}"),
    })?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

pub fn exists(ns: &str) -> bool {
    namespaces::exists(ns)
}

pub fn etc_dir(ns: &str) -> PathBuf {
    Path::new("/etc/netns").join(ns)
}

/// Creates the namespace of host `ns`.
pub fn add(ns: &str) -> Result<std::fs::File> {
    namespaces::create(ns).with_context(|| format!("cannot create network namespace `{ns}`"))
}

/// The file that marks a trust store scratchnet wrote (/etc/netns/NS/ssl).
const TRUST_MARK: &str = ".scratchnet-lab-ca";

/// /etc/netns/NS/ssl, which `ip netns exec` mounts over /etc/ssl inside the
/// namespace: a copy of the machine's /etc/ssl (its private keys left out)
/// whose bundle, certs/ca-certificates.crt, also holds the lab's CA. curl,
/// wget, Python and everything else on OpenSSL's default paths trust the
/// lab's certificates there, and the machine's own store is untouched.
pub fn trust_ca(ns: &str, ca_pem: &str) -> Result<()> {
    let ssl = etc_dir(ns).join("ssl");
    copy_tree(Path::new("/etc/ssl"), &ssl)
        .with_context(|| format!("cannot copy /etc/ssl to {}", ssl.display()))?;
    std::fs::write(
        ssl.join(TRUST_MARK),
        "the lab's CA; removed when the lab stops\n",
    )?;
    let bundle = ssl.join("certs").join("ca-certificates.crt");
    std::fs::create_dir_all(ssl.join("certs"))?;
    let mut text = std::fs::read_to_string(&bundle).unwrap_or_default();
    text.push_str(ca_pem);
    // A regular file of its own, not the copied symlink's target.
    let _ = std::fs::remove_file(&bundle);
    std::fs::write(&bundle, text).with_context(|| format!("cannot write {}", bundle.display()))
}

/// Whether /etc/netns/NS/ssl is there and not scratchnet's.
pub fn foreign_trust_store(ns: &str) -> bool {
    let ssl = etc_dir(ns).join("ssl");
    ssl.exists() && !ssl.join(TRUST_MARK).exists()
}

/// Copies `from` to `to`: directories, files (with their modes) and
/// symbolic links as links; `private` directories (keys) left out.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if kind.is_dir() {
            if entry.file_name() != "private" {
                copy_tree(&src, &dst)?;
            }
        } else {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// The first line of every file scratchnet writes in /etc/netns.
const ETC_MARK: &str = "# written by scratchnet";

/// Whether the file at `path` starts with [`ETC_MARK`] (read no further:
/// a large lab's hosts file is long).
fn written_by_us(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0; ETC_MARK.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == *ETC_MARK.as_bytes())
}

/// Removes what scratchnet wrote in /etc/netns for a namespace: its
/// resolv.conf, hosts and trust store, and the directory if the lab
/// created it (`own_dir`) and nothing else is in it.
fn remove_etc(ns: &str, own_dir: bool) -> Result<()> {
    let dir = etc_dir(ns);
    for file in ["resolv.conf", "hosts"] {
        let path = dir.join(file);
        if written_by_us(&path) {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    let ssl = dir.join("ssl");
    if ssl.join(TRUST_MARK).exists() {
        std::fs::remove_dir_all(&ssl)
            .with_context(|| format!("cannot remove {}", ssl.display()))?;
    }
    if own_dir && dir.exists() {
        if let Err(e) = std::fs::remove_dir(&dir) {
            let left: Vec<String> = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            tracing::warn!(
                "left {} in place ({e}): it holds {}",
                dir.display(),
                left.join(", ")
            );
        }
    }
    Ok(())
}

/// Removes namespaces and what scratchnet wrote in /etc/netns for them
/// (`own_dirs`: the directories the lab created). Absent ones are fine.
/// Processes still running in them (a DHCP client, a server a user
/// started with `ip netns exec`) are ended first: they would keep a
/// namespace alive, nameless, after the lab is gone, or write in its
/// /etc/netns directory after it was emptied. Returns what could not be
/// removed.
pub fn delete_all(names: &[String], own_dirs: &[String]) -> Vec<String> {
    let mut failures = Vec::new();
    // The processes first: a DHCP client still exiting may write its
    // resolv.conf after the files are gone.
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    end_processes(&names);
    for ns in &names {
        if let Err(e) = remove_etc(ns, own_dirs.iter().any(|d| d == ns)) {
            failures.push(format!("{e:#}"));
        }
    }
    for ns in names {
        if let Err(e) = namespaces::delete(ns) {
            failures.push(format!("cannot remove network namespace `{ns}`: {e}"));
        }
    }
    failures
}

/// SIGTERM to every process in the namespaces, SIGKILL to those still
/// there after a second, and up to a second more for them to be gone.
fn end_processes(names: &[&str]) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let pids = || -> Vec<Pid> {
        namespaces::pids(names)
            .into_values()
            .flatten()
            .map(Pid::from_raw)
            .collect()
    };
    let running = pids();
    if running.is_empty() {
        return;
    }
    // Each signal is given up to a second to take effect: a process
    // still dying could write in the namespace's /etc/netns directory.
    let ended = |signal| {
        for p in pids() {
            let _ = kill(p, signal);
        }
        for _ in 0..20 {
            if pids().is_empty() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    };
    if !ended(Signal::SIGTERM) && !ended(Signal::SIGKILL) {
        tracing::warn!("processes still running in the lab's namespaces after SIGKILL");
    }
}

/// Writes `/proc/sys/net/...` settings of the calling thread's
/// namespace.
fn sysctls(ns: &str, settings: &[(&str, &str)]) -> Result<()> {
    for (key, value) in settings {
        let at = Path::new("/proc/sys/net").join(key.replace('.', "/"));
        std::fs::write(&at, value)
            .with_context(|| format!("cannot set net.{key} = {value} in {ns}"))?;
    }
    Ok(())
}

/// The host's IPv6 settings before its link comes up: a SLAAC host
/// accepts router advertisements and makes its address from them; any
/// other host ignores them, so that it holds just what the topology gives
/// it. `advertised`: an advertisement can reach the host's segment; with
/// none to ignore, nothing is written (each lookup under /proc/sys/net
/// walks a name every namespace shares, eth0, which at thousands of hosts
/// costs seconds). Called inside the host's namespace.
fn configure_host6(host: &HostSpec, advertised: bool) -> Result<()> {
    let (accept_ra, autoconf) = match host.address6 {
        Some(HostAddress6::Slaac) => ("1", "1"),
        // The address comes from DHCPv6; the default route and the
        // on-link prefix, as always in IPv6, from the advertisements.
        Some(HostAddress6::Dhcp6) => ("1", "0"),
        Some(HostAddress6::Static(_)) | None if advertised => ("0", "0"),
        Some(HostAddress6::Static(_)) | None => return Ok(()),
    };
    sysctls(
        &host.name,
        &[
            ("ipv6.conf.eth0.accept_ra", accept_ra),
            ("ipv6.conf.eth0.autoconf", autoconf),
        ],
    )
}

/// Brings up host `host`'s links in its namespace `ns` (its TAP there is
/// `eth0`) and gives it its addresses, default routes and resolver.
/// `advertised`: a router advertisement can reach its segment.
pub fn configure_host(
    ns: &std::fs::File,
    host: &HostSpec,
    advertised: bool,
    resolvers: &[IpAddr],
) -> Result<()> {
    let name = host.name.as_str();
    namespaces::within(ns, || -> Result<()> {
        let eth0 = nix::net::if_::if_nametoindex("eth0")
            .with_context(|| format!("no eth0 in `{name}`"))?;
        let mut rtnl = Rtnl::open()?;
        // Super-frames no larger than a VXLAN datagram to a scratchnet
        // peer carries, so that they cross a tunnel whole (the cost
        // elsewhere is nil: 65,473 bytes instead of 65,536). A kernel too
        // old to set it leaves the default, and tunnels cut the few
        // larger ones.
        let gso_max = (wire::vxlan::MAX_OFFLOAD_FRAME - wire::ether::HEADER_LEN) as u32;
        rtnl.set_up(LOOPBACK, None)?;
        rtnl.finish()?;
        if let Err(e) = rtnl
            .set_up(eth0, Some(gso_max))
            .and_then(|()| rtnl.finish())
        {
            tracing::debug!("gso_max_size left as it was in {name}: {e}");
        }
        rtnl.finish()?;
        if let Err(e) = configure_host6(host, advertised) {
            // A container mounts /proc/sys read-only: the host keeps the
            // kernel's defaults (it takes advertisements, as a Linux host
            // does).
            eprintln!("scratchnet: host `{name}` keeps the kernel's IPv6 defaults: {e:#}");
        }
        rtnl.set_up(eth0, None)?;
        if let HostAddress::Static(addr) = host.address {
            rtnl.add_address(eth0, IpNet::V4(addr), false)?;
            if let Some(gw) = host.gateway {
                rtnl.add_route(IpNet::V4(Default::default()), IpAddr::V4(gw), None)?;
            }
        }
        if let Some(HostAddress6::Static(addr)) = host.address6 {
            // Duplicate address detection runs as on any Linux host: the
            // address is usable once no one has claimed it (about a
            // second).
            rtnl.add_address(eth0, IpNet::V6(addr), false)?;
            if let Some(gw) = host.gateway6 {
                rtnl.add_route(IpNet::V6(Default::default()), IpAddr::V6(gw), Some(eth0))?;
            }
        }
        rtnl.finish()?;
        Ok(())
    })
    .with_context(|| format!("cannot enter namespace `{name}`"))??;
    if !resolvers.is_empty() {
        write_resolv_conf(name, resolvers)?;
    }
    Ok(())
}

/// The loopback's index: always 1 in a new namespace.
const LOOPBACK: u32 = 1;

/// /etc/netns/NS/resolv.conf, which `ip netns exec` mounts over
/// /etc/resolv.conf inside the namespace.
pub fn write_resolv_conf(ns: &str, dns: &[IpAddr]) -> Result<()> {
    let dir = etc_dir(ns);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut text = format!("{ETC_MARK} for host {ns}; removed when the lab stops\n");
    for d in dns {
        text.push_str(&format!("nameserver {d}\n"));
    }
    let path = dir.join("resolv.conf");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// /etc/netns/NS/hosts, which `ip netns exec` mounts over /etc/hosts:
/// the lab's names, so `ping web1` works before DNS is asked. The hosts
/// of `switch` share one (it names every host, so a copy each would grow
/// with the square of the lab): `shared` is the first one written, which
/// this host's becomes a hard link to; without it, it is written, and its
/// path returned for the next.
pub fn write_hosts(
    ns: &str,
    switch: &str,
    names: impl FnOnce() -> Vec<(std::net::IpAddr, Vec<String>)>,
    shared: Option<&Path>,
) -> Result<PathBuf> {
    let dir = etc_dir(ns);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("hosts");
    if let Some(shared) = shared {
        std::fs::hard_link(shared, &path)
            .with_context(|| format!("cannot link {} to {}", path.display(), shared.display()))?;
        return Ok(path);
    }
    let mut text = format!(
        "{ETC_MARK} for the hosts on switch {switch}; removed when the lab stops\n127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
    );
    for (addr, names) in names() {
        text.push_str(&format!("{addr} {}\n", names.join(" ")));
    }
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

const DHCLIENT_SCRIPT: &str = include_str!("dhclient-script.sh");

/// dhclient settings: give up on the first attempt after 15 s (the lab
/// reports it) rather than the default 60.
const DHCLIENT_CONF: &str = "timeout 15;\nretry 5;\nrequest subnet-mask, broadcast-address, routers, domain-name-servers;\n";
const DHCLIENT6_CONF: &str =
    "timeout 15;\nretry 5;\nrequest dhcp6.name-servers, dhcp6.domain-search;\n";

/// What the lab's DHCP client is asked to do for a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Lease an address and keep renewing it in the background.
    Acquire,
    /// Send a RELEASE, give the address up and stop.
    Release,
}

/// Which DHCP: DHCPv4 (RFC 2131) or DHCPv6 (RFC 8415).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dhcp {
    V4,
    V6,
}

impl Dhcp {
    /// The client's pid file in the lab's run directory.
    pub fn pid_file(self, run_dir: &Path, ns: &str) -> PathBuf {
        match self {
            Dhcp::V4 => run_dir.join(format!("{ns}.dhclient.pid")),
            Dhcp::V6 => run_dir.join(format!("{ns}.dhclient6.pid")),
        }
    }

    /// The client's lease file: it exists once the client has run.
    pub fn lease_file(self, run_dir: &Path, ns: &str) -> PathBuf {
        match self {
            Dhcp::V4 => run_dir.join(format!("{ns}.leases")),
            Dhcp::V6 => run_dir.join(format!("{ns}.leases6")),
        }
    }
}

/// Runs the system's DHCP client for `eth0` in the host's namespace and
/// waits until it has a lease (it then keeps renewing in the background).
/// Its pid file goes in `run_dir`, so `down` can stop it.
pub fn run_dhclient(ns: &str, run_dir: &Path, family: Dhcp) -> Result<()> {
    dhclient(ns, run_dir, Lease::Acquire, family, false)
}

/// Which IPv6 address a host waits for on `eth0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Its link-local address: a DHCPv6 client sends from it.
    Link,
    /// A global one (static or SLAAC): the host is then ready.
    Global,
}

/// Whether host `ns`'s `eth0` holds an IPv6 address of `scope` that has
/// passed duplicate address detection.
fn ipv6_ready(ns: &std::fs::File, scope: Scope) -> Result<bool> {
    let found = namespaces::within(ns, || -> Result<bool> {
        let eth0 = nix::net::if_::if_nametoindex("eth0")?;
        let addrs = Rtnl::open()?.addresses(eth0)?;
        Ok(addrs
            .iter()
            .any(|a| a.addr.is_ipv6() && !a.tentative && a.link_scope == (scope == Scope::Link)))
    })??;
    Ok(found)
}

/// Waits (up to 5 s) until every host of `hosts` holds a usable IPv6
/// address of `scope` on `eth0`, looking at each in turn every 100 ms.
pub fn wait_for_ipv6(hosts: &[String], scope: Scope) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut waiting = Vec::new();
    for h in hosts {
        let ns = namespaces::open(h).with_context(|| format!("no namespace for host `{h}`"))?;
        waiting.push((h, ns));
    }
    loop {
        let mut still = Vec::new();
        for (h, ns) in waiting {
            if !ipv6_ready(&ns, scope)? {
                still.push((h, ns));
            }
        }
        waiting = still;
        let Some((h, _)) = waiting.first() else {
            return Ok(());
        };
        if std::time::Instant::now() > deadline {
            let what = match scope {
                Scope::Link => "link-local",
                Scope::Global => "global",
            };
            bail!(
                "host `{h}`{} has no usable {what} IPv6 address after 5 s (is a router advertising a prefix on its switch?)",
                match waiting.len() {
                    1 => String::new(),
                    n => format!(" (and {} more)", n - 1),
                }
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Runs the lab's DHCP client of `family` for host `ns`, with the files
/// in `run_dir` (its pid, lease and script files, so that a release stops
/// the running client and a new lease replaces it), and what it says
/// shown (`show`) or only its last words on failure.
pub fn dhclient(ns: &str, run_dir: &Path, what: Lease, family: Dhcp, show: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dhclient = ["/usr/sbin/dhclient", "/sbin/dhclient"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(dhclient) = dhclient else {
        bail!("host `{ns}` wants DHCP, which needs the DHCP client: install the isc-dhcp-client package (apt-get install isc-dhcp-client)");
    };
    std::fs::create_dir_all(run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    let script = run_dir.join("dhclient-script");
    std::fs::write(&script, DHCLIENT_SCRIPT)?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    let (flag, conf, text) = match family {
        Dhcp::V4 => ("-4", run_dir.join("dhclient.conf"), DHCLIENT_CONF),
        Dhcp::V6 => ("-6", run_dir.join("dhclient6.conf"), DHCLIENT6_CONF),
    };
    std::fs::write(&conf, text)?;
    // The namespace's own resolv.conf must exist before dhclient writes
    // it, or the write would land on the machine's.
    if !etc_dir(ns).join("resolv.conf").exists() {
        write_resolv_conf(ns, &[])?;
    }
    if family == Dhcp::V6 && what == Lease::Acquire {
        wait_for_ipv6(&[ns.to_owned()], Scope::Link)?;
    }
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, dhclient, flag, "-v", "-sf"]);
    cmd.arg(&script)
        .arg("-cf")
        .arg(&conf)
        .arg("-pf")
        .arg(family.pid_file(run_dir, ns))
        .arg("-lf")
        .arg(family.lease_file(run_dir, ns));
    cmd.arg(match what {
        Lease::Acquire => "-1",
        Lease::Release => "-r",
    });
    cmd.arg("eth0");
    if show {
        cmd.stdout(std::process::Stdio::inherit())
            .stderr(std::process::Stdio::inherit());
    }
    let out = cmd.output().context("cannot run dhclient")?;
    if !out.status.success() {
        let log = String::from_utf8_lossy(&out.stderr);
        let last = log
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output");
        let (what, key) = match family {
            Dhcp::V4 => ("DHCP", "dhcp"),
            Dhcp::V6 => ("DHCPv6", "dhcp6"),
        };
        bail!("host `{ns}` got no {what} lease (dhclient: {last}): is a router with `{key}` on its switch?");
    }
    Ok(())
}

/// Stops the DHCP clients whose pid files are in `run_dir`, then removes it.
pub fn stop_dhclients(run_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(run_dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "pid") {
            stop_dhclient(&path);
        }
    }
    let _ = std::fs::remove_dir_all(run_dir);
}

/// Stops the DHCP client whose pid file is `pid_file`, if it still runs.
pub fn stop_dhclient(pid_file: &Path) {
    let pid = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    let dhclient = |p: &i32| *p > 1 && crate::state::process_is(*p as u32, "dhclient");
    if let Some(pid) = pid.filter(dhclient) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

/// Gives the root namespace's end of a TUN link its addresses and routes.
/// An IPv6 address skips duplicate address detection: the link has one
/// other end, the lab's router, whose address differs. Where IPv6 is
/// disabled in this namespace (a container's default), the device is
/// asked to enable it; if it cannot be, the uplink carries IPv4 alone,
/// said once, and the lab goes on.
pub fn configure_host_tun(dev: &str, addrs: &[String], routes: &[String]) -> Result<()> {
    let mut v6 = true;
    for a in addrs {
        if !a.contains(':') {
            ip(&["addr", "add", a, "dev", dev])?;
            continue;
        }
        let enabled = std::fs::write(format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"), "0")
            .map_err(anyhow::Error::from)
            .and_then(|()| ip(&["-6", "addr", "add", a, "dev", dev, "nodad"]));
        if let Err(e) = enabled {
            eprintln!("scratchnet: the uplink carries IPv4 only: this namespace has IPv6 disabled and {dev} cannot enable it ({e:#})");
            v6 = false;
        }
    }
    ip(&["link", "set", dev, "up"])?;
    for r in routes.iter().filter(|r| v6 || !r.contains(':')) {
        ip(&["route", "add", r, "dev", dev]).with_context(|| {
            format!("cannot route {r} into the lab (does the machine already have a route for it?)")
        })?;
    }
    Ok(())
}
