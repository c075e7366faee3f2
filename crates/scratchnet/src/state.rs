//! What a running lab leaves on the system, written down so that it can be
//! removed: the state file and the control socket under /run/scratchnet.
//!
//! The state file is rewritten before each namespace is created, so a crash
//! at any point leaves a record that covers everything created so far.

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

pub fn socket_path(lab: &str) -> PathBuf {
    PathBuf::from(RUN_DIR).join(format!("{lab}.sock"))
}

/// Everything a lab created that outlives its process.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct LabState {
    pub lab: String,
    pub pid: u32,
    /// Namespaces created (each with /etc/netns/NAME).
    pub namespaces: Vec<String>,
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

    pub fn load(lab: &str) -> Result<Option<LabState>> {
        let path = state_path(lab);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                format!("{} is corrupt; remove it by hand", path.display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// The labs with a state file.
    pub fn all() -> Result<Vec<String>> {
        let Ok(dir) = std::fs::read_dir(RUN_DIR) else {
            return Ok(Vec::new());
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

    /// Whether the process that wrote this state is still running.
    pub fn is_running(&self) -> bool {
        self.pid != std::process::id()
            && std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
            && process_is_scratchnet(self.pid)
    }

    pub fn remove_files(&self) {
        for p in [state_path(&self.lab), socket_path(&self.lab)] {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A recycled pid may belong to anything: check it is one of ours.
fn process_is_scratchnet(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "scratchnet")
}

fn create_run_dir() -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(RUN_DIR)
        .with_context(|| format!("cannot create {RUN_DIR}"))
}
