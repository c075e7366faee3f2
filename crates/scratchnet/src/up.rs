//! `scratchnet up`: builds a lab, runs it until a signal, and removes
//! everything it created: on Ctrl-C or SIGTERM, on an error half-way
//! through building, and on a panic. After a SIGKILL, `scratchnet down`
//! does the same from the state file.

use crate::control;
use crate::down;
use crate::netns;
use crate::render::count;
use crate::state::LabState;
use anyhow::{bail, Context, Result};
use fabric::{DevicePort, Runtime};
use lab::{RunningLab, Services};
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use topology::{HostAddress, Topology};
use tuntap::{Device, DeviceOptions, Kind};

pub fn require_root(what: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "{what} needs root (CAP_NET_ADMIN) to create namespaces and devices: run it with sudo"
        );
    }
    Ok(())
}

/// Runs `lab` until a signal; with `web`, its page is served there.
pub async fn run(lab: Topology, web: Option<std::net::SocketAddr>) -> Result<()> {
    let started = std::time::Instant::now();
    require_root("scratchnet up")?;
    preflight(&lab)?;
    // Signals are taken over before anything is created, so that a Ctrl-C
    // during the build also tears down.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;

    let mut guard = Teardown {
        state: LabState::new(&lab.name),
        armed: true,
    };
    guard.state.save()?;
    let (blueprint, devices) = build(&lab, &mut guard.state)?;
    let endpoints = lab::endpoints(&blueprint.services);
    let runtime = Runtime::start(blueprint.fabric, devices, endpoints);
    let mut failures = runtime
        .failures()
        .context("the runtime's failures were taken")?;
    let services = Services::start(blueprint.services, &runtime, &blueprint.view)?;
    let running = Arc::new(RunningLab::new(runtime, services, blueprint.view));
    let server = control::serve(&lab.name, Arc::downgrade(&running))?;
    let page = match web {
        Some(addr) => Some(crate::web::serve(addr, Arc::downgrade(&running)).await?),
        None => None,
    };
    start_dhcp_clients(&lab).await?;
    for note in notes(&lab) {
        eprintln!("scratchnet: note: {note}");
    }
    if let Some(page) = &page {
        println!(
            "web: {} (the token after # lets the page change the lab)",
            page.url
        );
    }
    println!(
        "ready: lab `{}` with {} on {}, built in {:.2} s (status: scratchnet status; stop: Ctrl-C)",
        lab.name,
        count(lab.hosts.len() as u64, "host", "hosts"),
        count(lab.switches.len() as u64, "switch", "switches"),
        started.elapsed().as_secs_f64()
    );

    let mut failed = None;
    let why = tokio::select! {
        _ = sigint.recv() => "SIGINT",
        _ = sigterm.recv() => "SIGTERM",
        _ = sighup.recv() => "SIGHUP",
        Some(f) = failures.recv() => {
            tracing::error!("{f}: the lab cannot go on half working");
            failed = Some(f);
            "a failed task"
        }
    };
    tracing::info!("{why}: stopping lab `{}`", lab.name);
    drop(page);
    server.abort();
    let _ = server.await;
    match Arc::try_unwrap(running) {
        Ok(lab) => lab.stop().await,
        Err(lab) => drop(lab),
    }
    guard.armed = false;
    down::cleanup(&guard.state)?;
    println!(
        "stopped: lab `{}` removed ({})",
        lab.name,
        count(
            guard.state.namespaces.len() as u64,
            "namespace",
            "namespaces"
        )
    );
    match failed {
        Some(f) => bail!("lab `{}` stopped because {f} (see the log above)", lab.name),
        None => Ok(()),
    }
}

/// Refuses to start over something that exists, before creating anything.
fn preflight(lab: &Topology) -> Result<()> {
    if !std::path::Path::new("/dev/net/tun").exists() {
        bail!("/dev/net/tun is missing: load the tun module (modprobe tun), or in a container pass the device in (--device /dev/net/tun)");
    }
    if let Some(state) = LabState::load(&lab.name)? {
        if state.is_running() {
            bail!("lab `{}` is already running (pid {}): stop it first, or give this lab another `name`", lab.name, state.pid);
        }
        eprintln!(
            "scratchnet: note: removing what a crashed run of lab `{}` (pid {}) left behind",
            lab.name, state.pid
        );
        down::cleanup(&state)?;
    }
    for h in &lab.hosts {
        for file in ["resolv.conf", "hosts"] {
            let path = netns::etc_dir(&h.name).join(file);
            if path.exists() {
                bail!(
                    "{} already exists and is not this lab's: scratchnet would overwrite it; move it away or rename host `{}` in {}",
                    path.display(),
                    h.name,
                    lab.file
                );
            }
        }
        if netns::foreign_trust_store(&h.name) {
            bail!(
                "{} already exists and is not this lab's: scratchnet would put the lab's CA there; move it away or rename host `{}` in {}",
                netns::etc_dir(&h.name).join("ssl").display(),
                h.name,
                lab.file
            );
        }
        if netns::exists(&h.name) {
            bail!(
                "network namespace `{}` already exists and is not this lab's: remove it (ip netns delete {}) or rename host `{}` in {}",
                h.name,
                h.name,
                h.name,
                lab.file
            );
        }
    }
    Ok(())
}

/// Builds the lab's fabric (crates/lab), then what it needs at its
/// edges: for each host its namespace and TAP, for each router link to the
/// machine a TUN with its address and routes. Records each namespace in
/// the state file before creating it.
fn build(lab: &Topology, state: &mut LabState) -> Result<(lab::Blueprint, Vec<DevicePort>)> {
    let blueprint = lab::build(lab).context("cannot build the lab")?;
    let ca = blueprint.view.ca().map(|ca| ca.cert_pem());
    if let Some(pem) = &ca {
        write_ca(&lab.name, pem)?;
    }
    let mut devices = Vec::new();
    for t in &blueprint.tuns {
        let options = DeviceOptions {
            kind: Kind::Tun,
            offload: true,
            mtu: t.mtu,
            mac: None,
            txqueuelen: 10_000,
            name: None,
        };
        let device = Device::open(&options).context("cannot create a TUN device")?;
        let mut addrs = vec![format!("{}/{}", t.peer, t.prefix_len)];
        addrs.extend(t.peer6.map(|(a, len)| format!("{a}/{len}")));
        let routes: Vec<String> = t.host_routes.iter().map(|n| n.to_string()).collect();
        netns::configure_host_tun(device.name(), &addrs, &routes)
            .with_context(|| format!("cannot set up the machine's end of {}", t.name))?;
        devices.push(DevicePort {
            port: t.port,
            io: Box::new(device),
        });
    }
    for t in &blueprint.tunnels {
        let spec = &t.spec;
        let remote = resolve_peer(&spec.remote, spec.port)?;
        let config = tunnel::TunnelConfig {
            local: std::net::SocketAddr::new(spec.local.into(), spec.port),
            remote,
            vni: spec.vni,
            offload: spec.offload,
        };
        let port = tunnel::VxlanPort::bind(config).with_context(|| {
            format!(
                "cannot open VXLAN tunnel {} on {} (another tunnel, or a Linux vxlan device, may hold the port)",
                spec.port_name, config.local
            )
        })?;
        tracing::info!(
            "VXLAN tunnel {}: VNI {} from {} to {remote}",
            spec.port_name,
            spec.vni,
            config.local
        );
        devices.push(DevicePort {
            port: t.port,
            io: Box::new(port),
        });
    }
    // Every host's namespace is on record before the first is made: a
    // crash part way leaves `down` what to remove.
    for h in &blueprint.hosts {
        state.namespaces.push(h.spec.name.clone());
        if !netns::etc_dir(&h.spec.name).exists() {
            state.etc_dirs.push(h.spec.name.clone());
        }
    }
    match crate::neigh::raise(blueprint.hosts.len()) {
        Ok(raised) => {
            for r in &raised {
                eprintln!(
                    "scratchnet: {} raised from {} to {} for {} hosts (the kernel's neighbour tables are one per machine); put back when the lab stops",
                    r.key,
                    r.old,
                    r.new,
                    blueprint.hosts.len()
                );
            }
            state.sysctls = raised;
        }
        Err(e) => eprintln!("scratchnet: the kernel's neighbour tables keep their bounds ({e:#}): a large lab may see `neighbor table overflow`"),
    }
    state.save()?;
    let runtime = tokio::runtime::Handle::current();
    let lab = blueprint.view.topology();
    // Hosts on one switch share their hosts file.
    let mut hosts_files = std::collections::HashMap::new();
    for h in &blueprint.hosts {
        let spec = &h.spec;
        let ns = netns::add(&spec.name)?;
        let options = DeviceOptions {
            kind: Kind::Tap,
            offload: spec.offload,
            mtu: spec.mtu,
            mac: Some(spec.mac),
            txqueuelen: spec.txqueuelen,
            name: Some("eth0".to_owned()),
        };
        // Opened from inside the namespace, where it is the host's eth0.
        let device = namespaces::within(&ns, || {
            let _runtime = runtime.enter();
            Device::open(&options)
        })
        .and_then(|opened| opened)
        .with_context(|| format!("cannot create a TAP device for host `{}`", spec.name))?;
        let advertised = lab.advertised_on(&spec.switch);
        // Its own resolvers, then those its routers advertise (RFC 8106),
        // as rdnssd adds them; a DHCP host's come with its leases.
        let mut resolvers = spec.dns.clone();
        let leased = spec.address == topology::HostAddress::Dhcp
            || spec.address6 == Some(topology::HostAddress6::Dhcp6);
        if spec.address6.is_some() && !leased {
            let advertised = lab.rdnss_on(&spec.switch).into_iter();
            let advertised = advertised.map(std::net::IpAddr::V6);
            resolvers.extend(advertised.filter(|a| !spec.dns.contains(a)));
        }
        netns::configure_host(&ns, spec, advertised, &resolvers)
            .with_context(|| format!("cannot set up host `{}`", spec.name))?;
        // A DHCP host takes its resolvers from the lease.
        let named = !resolvers.is_empty() || leased;
        let key = (spec.switch.clone(), named);
        let shared = hosts_files.get(&key).map(std::path::PathBuf::as_path);
        let names = || lab::hosts_file(lab, &spec.switch, named);
        let written = netns::write_hosts(&spec.name, &spec.switch, names, shared)?;
        hosts_files.entry(key).or_insert(written);
        if let Some(pem) = &ca {
            netns::trust_ca(&spec.name, pem)?;
        }
        devices.push(DevicePort {
            port: h.port,
            io: Box::new(device),
        });
    }
    Ok((blueprint, devices))
}

/// How long a tunnel waits for its peer's host name to resolve (a
/// container's name appears when the container starts).
const PEER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The address of a tunnel's peer: an IPv4 address, or a host name,
/// waited for up to [`PEER_WAIT`].
fn resolve_peer(remote: &str, port: u16) -> Result<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        let found = (remote, port)
            .to_socket_addrs()
            .map(|mut a| a.find(std::net::SocketAddr::is_ipv4));
        match found {
            Ok(Some(addr)) => return Ok(addr),
            _ if started.elapsed() >= PEER_WAIT => {
                bail!("the VXLAN peer `{remote}` has no IPv4 address after {} s: check its name, or that it is up", PEER_WAIT.as_secs())
            }
            _ => {
                if !said {
                    eprintln!(
                        "scratchnet: waiting for the VXLAN peer `{remote}` to have an address"
                    );
                    said = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        }
    }
}

/// Writes the lab's CA certificate where the user can give it to curl
/// (`curl --cacert /run/scratchnet-LAB-ca.pem`); readable by all, as a
/// certificate is public (its key never leaves the process).
fn write_ca(lab: &str, pem: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = crate::state::ca_path(lab);
    std::fs::write(&path, pem).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    eprintln!(
        "scratchnet: the lab's certificate authority is in {} (namespaces trust it)",
        path.display()
    );
    Ok(())
}

/// Runs the DHCP clients (DHCPv4, DHCPv6) of every DHCP host, all at
/// once, and waits for their leases and for every other IPv6 host's
/// address.
async fn start_dhcp_clients(lab: &Topology) -> Result<()> {
    let dir = crate::state::lab_dir(&lab.name);
    let v4 = lab
        .hosts
        .iter()
        .filter(|h| h.address == HostAddress::Dhcp)
        .map(|h| (h, netns::Dhcp::V4));
    let v6 = lab
        .hosts
        .iter()
        .filter(|h| h.address6 == Some(topology::HostAddress6::Dhcp6))
        .map(|h| (h, netns::Dhcp::V6));
    let v4_clients = v4.clone().count();
    let mut clients: Vec<_> = v4
        .chain(v6)
        .map(|(h, family)| {
            let (ns, dir) = (h.name.clone(), dir.clone());
            tokio::task::spawn_blocking(move || netns::run_dhclient(&ns, &dir, family))
        })
        .collect();
    // Static and SLAAC hosts are ready once their address has passed
    // duplicate address detection (about a second, as on any Linux host).
    let addressed: Vec<String> = lab
        .hosts
        .iter()
        .filter(|h| {
            matches!(
                h.address6,
                Some(topology::HostAddress6::Slaac | topology::HostAddress6::Static(_))
            )
        })
        .map(|h| h.name.clone())
        .collect();
    if !addressed.is_empty() {
        clients.push(tokio::task::spawn_blocking(move || {
            netns::wait_for_ipv6(&addressed, netns::Scope::Global)
        }));
    }
    for (n, c) in clients.into_iter().enumerate() {
        match c.await? {
            Ok(()) => {}
            // IPv4's DHCP is what hosts cannot do without; IPv6 that does
            // not come up (a container's restrictions, say) is said, and
            // the lab goes on.
            Err(e) if n >= v4_clients => eprintln!("scratchnet: {e:#}"),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What this version does not build yet, and settings below what the
/// RFCs ask, said plainly.
fn notes(lab: &Topology) -> Vec<String> {
    let mut notes = Vec::new();
    for r in &lab.routers {
        let Some(n) = &r.nat else { continue };
        let minimums = [
            (
                "udp_timeout_secs",
                n.udp_timeout.as_secs(),
                120,
                "RFC 4787 REQ-5",
            ),
            (
                "tcp_established_timeout_secs",
                n.tcp_established_timeout.as_secs(),
                7440,
                "RFC 5382 REQ-5",
            ),
            (
                "tcp_transitory_timeout_secs",
                n.tcp_transitory_timeout.as_secs(),
                240,
                "RFC 5382 REQ-5",
            ),
            (
                "icmp_timeout_secs",
                n.icmp_timeout.as_secs(),
                60,
                "RFC 5508",
            ),
        ];
        for (key, secs, min, rfc) in minimums.into_iter().filter(|(_, s, m, _)| s < m) {
            notes.push(format!(
                "router `{}`: nat.{key} = {secs} is below the {min} s that {rfc} asks for",
                r.name
            ));
        }
    }
    let built: Vec<&str> = lab::kinds::ALL.iter().map(|k| k.kind().name()).collect();
    for s in lab
        .services
        .iter()
        .filter(|s| lab::kinds::find(s.kind()).is_none())
    {
        notes.push(format!(
            "service `{}` ({}) is not built yet: this version runs {}",
            s.name,
            s.kind().name(),
            built.join(", ")
        ));
    }
    notes
}

/// Removes what was created if the build fails or panics half-way.
struct Teardown {
    state: LabState,
    armed: bool,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = down::cleanup(&self.state) {
                eprintln!("scratchnet: {e:#}");
            }
        }
    }
}
