//! `scratchnet exec HOST -- CMD` and `scratchnet shell HOST`: a command or
//! an interactive shell in a running lab's host, as `ip netns exec` would
//! run it, after checking that the host is one a running lab made.

use crate::state::LabState;
use anyhow::{bail, Context, Result};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The running lab whose namespaces include `host`.
fn lab_of(host: &str, lab: Option<&str>) -> Result<String> {
    if !nix::unistd::geteuid().is_root() {
        bail!("entering a host's namespace needs root: sudo scratchnet …");
    }
    let labs = match lab {
        Some(l) => vec![l.to_owned()],
        None => LabState::all()?,
    };
    let mut hosts = Vec::new();
    for name in labs {
        let Some(state) = LabState::load(&name)?.filter(LabState::is_running) else {
            continue;
        };
        if state.namespaces.iter().any(|n| n == host) {
            return Ok(state.lab);
        }
        hosts.extend(state.namespaces);
    }
    if hosts.is_empty() {
        bail!("no lab is running: start one with `sudo scratchnet up`");
    }
    bail!(
        "no running lab has a host `{host}` (hosts: {}; service hosts run inside scratchnet and have no namespace)",
        hosts.join(", ")
    )
}

/// Replaces this process with `argv` run in `host`'s namespace; returns
/// only if that fails.
pub fn exec(host: &str, lab: Option<&str>, argv: &[String]) -> Result<()> {
    lab_of(host, lab)?;
    let Some((program, args)) = argv.split_first() else {
        bail!("say what to run: scratchnet exec {host} -- COMMAND [ARGS]");
    };
    let err = Command::new("ip")
        .args(["netns", "exec", host, program])
        .args(args)
        .exec();
    Err(err).context("cannot run ip netns exec")
}

/// An interactive bash in `host`'s namespace whose prompt names the host
/// (`$SCRATCHNET_HOST` holds its name too).
pub fn shell(host: &str, lab: Option<&str>) -> Result<()> {
    let lab = lab_of(host, lab)?;
    eprintln!("scratchnet: a shell in host `{host}` of lab `{lab}`; `exit` leaves it");
    let err = Command::new("ip")
        .args(["netns", "exec", host, "bash", "--norc", "-i"])
        .env("PS1", format!("[{host}] \\w \\$ "))
        .env("SCRATCHNET_HOST", host)
        .env("SCRATCHNET_LAB", &lab)
        .exec();
    Err(err).context("cannot run ip netns exec … bash")
}
