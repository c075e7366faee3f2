//! What a running lab leaves on the system, written down so that it can be
//! removed: the state file and the control socket under /run/scratchnet.
//!
//! The state file is rewritten before each namespace is created, so a crash
//! at any point leaves a record that covers everything created so far.
//!
//! `down` trusts a state file no further than it must: every name in it is
//! checked before anything is touched, only the /etc/netns directories
//! the lab created are removed, and a recorded pid is signalled only if
//! the process still has the start time it had when it wrote the file.

use anyhow::{Context, Result};
use std::path::PathBuf;

/// Where state files and control sockets live (a tmpfs: gone on reboot,
/// as network namespaces are).
pub const RUN_DIR: &str = "/run/scratchnet";

pub fn state_path(lab: &str) -> PathBuf {
    PathBuf::from(RUN_DIR).join(format!("{lab}.json"))
}

/// Files a running lab keeps for its helpers (DHCP clients and their
/// scripts, leases and pid files).
pub fn lab_dir(lab: &str) -> PathBuf {
    PathBuf::from(RUN_DIR).join(lab)
}

/// The lab's CA certificate (PEM), for the user to give curl: outside
/// RUN_DIR, which only root may enter.
pub fn ca_path(lab: &str) -> PathBuf {
    PathBuf::from(format!("{RUN_DIR}-{lab}-ca.pem"))
}

pub fn socket_path(lab: &str) -> PathBuf {
    PathBuf::from(RUN_DIR).join(format!("{lab}.sock"))
}

/// Everything a lab created that outlives its process.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct LabState {
    pub lab: String,
    pub pid: u32,
    /// The process's start time (clock ticks after boot, /proc/PID/stat),
    /// so that a recycled pid is never taken for the lab.
    #[serde(default)]
    pub pid_start: Option<u64>,
    /// Namespaces created.
    pub namespaces: Vec<String>,
    /// /etc/netns/NAME directories the lab created (a namespace's
    /// resolv.conf goes there); others are left in place.
    #[serde(default)]
    pub etc_dirs: Vec<String>,
    /// Machine-wide sysctls the lab raised (crate::neigh), to put back.
    #[serde(default)]
    pub sysctls: Vec<crate::neigh::Raised>,
}

impl LabState {
    pub fn save(&self) -> Result<()> {
        create_run_dir()?;
        let path = state_path(&self.lab);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }

    /// A new record for this process.
    pub fn new(lab: &str) -> LabState {
        let pid = std::process::id();
        LabState {
            lab: lab.to_owned(),
            pid,
            pid_start: process_start(pid),
            namespaces: Vec::new(),
            etc_dirs: Vec::new(),
            sysctls: Vec::new(),
        }
    }

    pub fn load(lab: &str) -> Result<Option<LabState>> {
        if !topology::is_valid_name(lab) {
            anyhow::bail!("`{lab}` is not a lab name (lowercase letters, digits and dashes)");
        }
        let path = state_path(lab);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let state: LabState = serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is corrupt; remove it by hand", path.display()))?;
                let names = std::iter::once(&state.lab)
                    .chain(&state.namespaces)
                    .chain(&state.etc_dirs);
                if let Some(bad) = names.into_iter().find(|n| !topology::is_valid_name(n)) {
                    anyhow::bail!(
                        "{} names `{bad}`, which no scratchnet lab creates: nothing was touched; check the file and remove it by hand",
                        path.display()
                    );
                }
                if state.lab != lab {
                    anyhow::bail!(
                        "{} belongs to lab `{}`, not `{lab}`: nothing was touched; remove it by hand",
                        path.display(),
                        state.lab
                    );
                }
                Ok(Some(state))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// The labs with a state file.
    pub fn all() -> Result<Vec<String>> {
        let dir = match std::fs::read_dir(RUN_DIR) {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => anyhow::bail!(
                "{RUN_DIR} is root's, so whether a lab is running cannot be told without it: run this with sudo"
            ),
            Err(_) => return Ok(Vec::new()),
        };
        let mut labs = Vec::new();
        for entry in dir {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(lab) = name.strip_suffix(".json") {
                labs.push(lab.to_owned());
            }
        }
        labs.sort();
        Ok(labs)
    }

    /// Whether the process that wrote this state is still running: same
    /// pid, a scratchnet, started when the record says.
    pub fn is_running(&self) -> bool {
        self.pid != std::process::id()
            && process_is(self.pid, "scratchnet")
            && self
                .pid_start
                .is_none_or(|t| process_start(self.pid) == Some(t))
    }

    pub fn remove_files(&self) {
        for p in [
            state_path(&self.lab),
            socket_path(&self.lab),
            ca_path(&self.lab),
        ] {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Whether process `pid` runs the program `comm` (a recycled pid may
/// belong to anything).
pub fn process_is(pid: u32, comm: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        && !is_zombie(pid)
}

/// Whether the process has exited and waits only to be reaped (state Z in
/// /proc/PID/stat): it holds nothing any more, devices included.
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            == Some("Z")
    })
}

/// A process's start time in clock ticks after boot (/proc/PID/stat,
/// field 22), which, with the pid, names one process for good.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn create_run_dir() -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(RUN_DIR)
        .with_context(|| format!("cannot create {RUN_DIR}"))
}
