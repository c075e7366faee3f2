//! `scratchnet up`: builds a lab, runs it until a signal, and removes
//! everything it created: on Ctrl-C or SIGTERM, on an error half-way
//! through building, and on a panic. After a SIGKILL, `scratchnet down`
//! does the same from the state file.

use crate::control;
use crate::down;
use crate::netns;
use crate::state::LabState;
use anyhow::{bail, Context, Result};
use fabric::{Fabric, Runtime, TapPort};
use std::sync::Arc;
use switch::{PortConfig, PortMode, SwitchConfig};
use tokio::signal::unix::{signal, SignalKind};
use topology::{HostAddress, Topology};
use tuntap::{Tap, TapOptions};

pub fn require_root(what: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "{what} needs root (CAP_NET_ADMIN) to create namespaces and devices: run it with sudo"
        );
    }
    Ok(())
}

pub async fn run(lab: Topology) -> Result<()> {
    let started = std::time::Instant::now();
    require_root("scratchnet up")?;
    preflight(&lab)?;
    // Signals are taken over before anything is created, so that a Ctrl-C
    // during the build also tears down.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;

    let mut guard = Teardown {
        state: LabState {
            lab: lab.name.clone(),
            pid: std::process::id(),
            namespaces: Vec::new(),
        },
        armed: true,
    };
    guard.state.save()?;
    let (fabric, taps) = build(&lab, &mut guard.state)?;
    let runtime = Arc::new(Runtime::start(fabric, taps));
    let server = control::serve(&lab.name, Arc::downgrade(&runtime))?;
    for note in notes(&lab) {
        eprintln!("scratchnet: note: {note}");
    }
    println!(
        "ready: lab `{}` with {} hosts on {} switches, built in {:.2} s (status: scratchnet status; stop: Ctrl-C)",
        lab.name,
        lab.hosts.len(),
        lab.switches.len(),
        started.elapsed().as_secs_f64()
    );

    let why = tokio::select! {
        _ = sigint.recv() => "SIGINT",
        _ = sigterm.recv() => "SIGTERM",
        _ = sighup.recv() => "SIGHUP",
    };
    tracing::info!("{why}: stopping lab `{}`", lab.name);
    server.abort();
    let _ = server.await;
    match Arc::try_unwrap(runtime) {
        Ok(rt) => rt.shutdown().await,
        Err(rt) => drop(rt),
    }
    guard.armed = false;
    down::cleanup(&guard.state)?;
    println!(
        "stopped: lab `{}` removed ({} namespaces)",
        lab.name,
        guard.state.namespaces.len()
    );
    Ok(())
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

/// Creates the fabric and, for each host, its namespace and TAP. Records
/// each namespace in the state file before creating it.
fn build(lab: &Topology, state: &mut LabState) -> Result<(Fabric, Vec<TapPort>)> {
    let mut fabric = Fabric::new();
    let mut switch_ids = std::collections::HashMap::new();
    for s in &lab.switches {
        let config = SwitchConfig {
            ageing: s.ageing,
            max_macs: s.mac_table_size,
        };
        switch_ids.insert(s.name.as_str(), fabric.add_switch(&s.name, config));
    }
    let mut taps = Vec::new();
    for h in &lab.hosts {
        state.namespaces.push(h.name.clone());
        state.save()?;
        netns::add(&h.name)?;
        let options = TapOptions {
            offload: h.offload,
            mtu: h.mtu,
            mac: h.mac,
            txqueuelen: h.txqueuelen,
        };
        let tap = Tap::open(&options)
            .with_context(|| format!("cannot create a TAP device for host `{}`", h.name))?;
        netns::configure_host(h, tap.name())
            .with_context(|| format!("cannot set up host `{}`", h.name))?;
        let switch = switch_ids[h.switch.as_str()];
        let mode = if h.tagged_vlans.is_empty() {
            PortMode::Access { vlan: h.vlan }
        } else {
            PortMode::Trunk {
                native: Some(h.vlan),
                allowed: h.tagged_vlans.iter().copied().collect(),
            }
        };
        let config = PortConfig { mode, mtu: h.mtu };
        let port = fabric.add_port(&h.name, switch, config, h.offload)?;
        taps.push(TapPort { port, tap });
    }
    Ok((fabric, taps))
}

/// What this version does not build yet, said plainly.
fn notes(lab: &Topology) -> Vec<String> {
    let mut notes = Vec::new();
    for r in &lab.routers {
        notes.push(format!(
            "router `{}` is not built: this version has switches and hosts only",
            r.name
        ));
    }
    for s in &lab.services {
        notes.push(format!(
            "service `{}` is not built: this version has switches and hosts only",
            s.name
        ));
    }
    for h in lab.hosts.iter().filter(|h| h.address == HostAddress::Dhcp) {
        notes.push(format!(
            "host `{}` wants DHCP, which needs a router: its eth0 is up with no IPv4 address",
            h.name
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
