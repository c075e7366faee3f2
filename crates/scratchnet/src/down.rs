//! `scratchnet down`: removes what a lab left behind after a crash, from
//! its state file. A lab that is still running is asked to stop first.

use crate::netns;
use crate::state::LabState;
use anyhow::{bail, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

pub fn run(lab: Option<&str>) -> Result<()> {
    crate::up::require_root("scratchnet down")?;
    let labs = match lab {
        Some(l) => vec![l.to_owned()],
        None => LabState::all()?,
    };
    let mut cleaned = 0;
    for lab in labs {
        let Some(state) = LabState::load(&lab)? else {
            report(&format!("lab `{lab}`: nothing to remove"));
            continue;
        };
        stop_if_running(&state)?;
        // The lab may have removed everything itself on the way out.
        if let Some(state) = LabState::load(&lab)? {
            cleanup(&state)?;
            report(&format!(
                "lab `{lab}`: removed {} and its state",
                crate::render::count(state.namespaces.len() as u64, "namespace", "namespaces")
            ));
            cleaned += 1;
        } else {
            report(&format!("lab `{lab}`: stopped"));
        }
    }
    if cleaned == 0 && lab.is_none() {
        report("nothing to remove");
    }
    Ok(())
}

fn report(line: &str) {
    println!("{line}");
}

/// Removes every namespace and file recorded in `state`.
pub fn cleanup(state: &LabState) -> Result<()> {
    // Helpers first: a DHCP client left running would keep its namespace
    // alive after the namespace's name is gone.
    netns::stop_dhclients(&crate::state::lab_dir(&state.lab));
    let failures = netns::delete_all(&state.namespaces, &state.etc_dirs);
    crate::neigh::restore(&state.sysctls);
    if !failures.is_empty() {
        bail!(
            "some namespaces of lab `{}` could not be removed:\n  {}",
            state.lab,
            failures.join("\n  ")
        );
    }
    state.remove_files();
    Ok(())
}

/// Sends SIGTERM to a running lab and waits up to 10 s for it to exit.
fn stop_if_running(state: &LabState) -> Result<()> {
    if !state.is_running() {
        return Ok(());
    }
    let pid = Pid::from_raw(state.pid as i32);
    kill(pid, Signal::SIGTERM)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.is_running() {
        if Instant::now() > deadline {
            bail!(
                "lab `{}` (pid {}) did not stop within 10 s of SIGTERM",
                state.lab,
                state.pid
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
