//! Named network namespaces, as iproute2 keeps them: `/run/netns/NAME`, a
//! file with the namespace bind-mounted on it, on a shared mount so that
//! other mount namespaces see it.

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where named namespaces live.
const RUN_DIR: &str = "/run/netns";

fn path(name: &str) -> PathBuf {
    Path::new(RUN_DIR).join(name)
}

/// Whether a namespace of that name exists.
pub fn exists(name: &str) -> bool {
    path(name).exists()
}

/// The namespace's file, for [`within`] and for moving links into it.
pub fn open(name: &str) -> io::Result<File> {
    File::open(path(name))
}

/// Makes `/run/netns` a shared mount point, once: a namespace mounted
/// there then shows in every mount namespace that shares it (what `ip
/// netns add` does on its first run).
fn shared_run_dir() -> io::Result<()> {
    std::fs::create_dir_all(RUN_DIR)?;
    let shared = || {
        mount(
            None::<&str>,
            RUN_DIR,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match shared() {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) => {
            // Not a mount point yet: make it one (a bind mount on itself).
            mount(
                Some(RUN_DIR),
                RUN_DIR,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )?;
            shared().map_err(io::Error::from)
        }
        Err(e) => Err(e.into()),
    }
}

/// Creates the namespace `name`: a fresh network namespace (only its
/// loopback, down) bound to `/run/netns/NAME`. Fails if one of that name
/// exists.
pub fn create(name: &str) -> io::Result<File> {
    shared_run_dir()?;
    let at = path(name);
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&at)?;
    // A thread of its own takes the new namespace, so the process stays
    // where it is; the bind mount keeps the namespace once it ends.
    let bound = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            unshare(CloneFlags::CLONE_NEWNET)?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &at,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
    });
    if let Err(e) = bound {
        let _ = std::fs::remove_file(&at);
        return Err(e);
    }
    open(name)
}

/// Removes the name of namespace `name` (the namespace itself goes once
/// nothing holds it: a process in it, an open file). Absent is fine.
pub fn delete(name: &str) -> io::Result<()> {
    let at = path(name);
    if !at.exists() {
        return Ok(());
    }
    match umount2(&at, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
        Err(e) => return Err(e.into()),
    }
    std::fs::remove_file(&at)
}

/// Runs `f` on a thread that has joined the namespace in `ns`.
pub fn within<R: Send>(ns: &File, f: impl FnOnce() -> R + Send) -> io::Result<R> {
    std::thread::scope(|s| {
        s.spawn(|| -> io::Result<R> {
            setns(ns, CloneFlags::CLONE_NEWNET)?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("a thread in a namespace panicked")))
    })
}

/// The processes in each of the named namespaces (those that exist), in
/// one pass over `/proc`.
pub fn pids(names: &[&str]) -> HashMap<String, Vec<i32>> {
    let mut by_inode = HashMap::new();
    for name in names {
        if let Ok(meta) = std::fs::metadata(path(name)) {
            by_inode.insert((meta.dev(), meta.ino()), (*name).to_owned());
        }
    }
    let mut found: HashMap<String, Vec<i32>> = HashMap::new();
    if by_inode.is_empty() {
        return found;
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(entry.path().join("ns/net")) else {
            continue;
        };
        if let Some(name) = by_inode.get(&(meta.dev(), meta.ino())) {
            found.entry(name.clone()).or_default().push(pid);
        }
    }
    found
}
