//! Network namespaces for hosts, set up and removed with iproute2 (`ip`),
//! the tool network engineers know: what scratchnet does here is what they
//! would type.

use anyhow::{bail, Context, Result};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use topology::{HostAddress, HostSpec};

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
    Path::new("/run/netns").join(ns).exists()
}

fn etc_dir(ns: &str) -> PathBuf {
    Path::new("/etc/netns").join(ns)
}

pub fn add(ns: &str) -> Result<()> {
    ip(&["netns", "add", ns])
}

/// Removes a namespace and its /etc/netns directory; absent ones are fine.
pub fn delete(ns: &str) -> Result<()> {
    let dir = etc_dir(ns);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    if exists(ns) {
        ip(&["netns", "delete", ns])?;
    }
    Ok(())
}

/// Moves the host's TAP into its namespace as `eth0`, brings it up and
/// gives it its address, default route and resolver.
pub fn configure_host(host: &HostSpec, tap: &str) -> Result<()> {
    let ns = host.name.as_str();
    ip(&["link", "set", tap, "netns", ns])?;
    ip(&["-n", ns, "link", "set", tap, "name", "eth0"])?;
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    ip(&["-n", ns, "link", "set", "eth0", "up"])?;
    if let HostAddress::Static(addr) = host.address {
        ip(&["-n", ns, "addr", "add", &addr.to_string(), "dev", "eth0"])?;
        if let Some(gw) = host.gateway {
            ip(&["-n", ns, "route", "add", "default", "via", &gw.to_string()])?;
        }
    }
    if !host.dns.is_empty() {
        write_resolv_conf(ns, &host.dns)?;
    }
    Ok(())
}

/// /etc/netns/NS/resolv.conf, which `ip netns exec` mounts over
/// /etc/resolv.conf inside the namespace.
fn write_resolv_conf(ns: &str, dns: &[IpAddr]) -> Result<()> {
    let dir = etc_dir(ns);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut text = format!("# written by scratchnet for host {ns}; removed when the lab stops\n");
    for d in dns {
        text.push_str(&format!("nameserver {d}\n"));
    }
    let path = dir.join("resolv.conf");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}
