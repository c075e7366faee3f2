//! Helpers for the real-namespace tests: a lab run by the real binary, torn
//! down by a guard even when a test fails, and commands run in its hosts.
//!
//! These tests need root (namespaces, TAP devices); scripts/test.sh runs
//! them with `--include-ignored` when it is root, as CI is.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const ROOT: &str = "needs root (namespaces, TAP devices): scripts/test.sh runs it as root";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_scratchnet")
}

/// A running `scratchnet up`, stopped and cleaned up when dropped.
pub struct Lab {
    pub name: String,
    pub file: PathBuf,
    child: Option<Child>,
    stderr: mpsc::Receiver<String>,
}

/// Writes a topology to a temporary file named after the lab.
pub fn topology_file(name: &str, toml: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("scratchnet-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, toml).unwrap();
    file
}

/// A lab of `hosts` on one switch `lan` in 10.77.N.0/24 (N from the name).
pub fn lan_topology(name: &str, net: u8, hosts: &[&str]) -> String {
    let mut t =
        format!("name = \"{name}\"\n[[switch]]\nname = \"lan\"\nsubnet = \"10.77.{net}.0/24\"\n");
    for (i, h) in hosts.iter().enumerate() {
        t += &format!(
            "[[host]]\nname = \"{h}\"\nswitch = \"lan\"\naddress = \"10.77.{net}.{}/24\"\n",
            i + 1
        );
    }
    t
}

impl Lab {
    /// Starts the lab and waits for its `ready` line.
    pub fn up(name: &str, toml: &str) -> Lab {
        Lab::up_file(name, &topology_file(name, toml))
    }

    /// Starts the lab of a topology file and waits for its `ready` line.
    pub fn up_file(name: &str, file: &std::path::Path) -> Lab {
        Lab::up_with(name, file, &[]).0
    }

    /// Starts the lab of a topology file with more arguments to `up`;
    /// the lab and the lines it printed before `ready`.
    pub fn up_with(name: &str, file: &std::path::Path, args: &[&str]) -> (Lab, Vec<String>) {
        let file = file.to_path_buf();
        let mut child = Command::new(bin())
            .arg("up")
            .arg(&file)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (etx, erx) = mpsc::channel();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            let _ = etx.send(s);
        });
        let mut lab = Lab {
            name: name.to_owned(),
            file,
            child: Some(child),
            stderr: erx,
        };
        let mut before = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.contains("ready") => return (lab, before),
                Ok(line) => before.push(line),
                Err(_) => {
                    let status = lab.child.as_mut().unwrap().try_wait().unwrap();
                    let stderr = lab
                        .stderr
                        .recv_timeout(Duration::from_secs(2))
                        .unwrap_or_default();
                    panic!("lab {name} did not become ready (exit {status:?}):\n{stderr}");
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends a signal to `scratchnet up` and waits for it to exit.
    pub fn stop_with(&mut self, signal: &str) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        sh(&format!("kill -{signal} {}", child.id()));
        let status = child.wait().unwrap();
        let stderr = self
            .stderr
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default();
        (status, stderr)
    }

    pub fn status_json(&self) -> serde_json::Value {
        let out = Command::new(bin())
            .args(["status", "--json", "--lab", &self.name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The status entry of a router.
    pub fn router(&self, name: &str) -> serde_json::Value {
        let s = self.status_json();
        s["fabric"]["routers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no router {name} in {s}"))
    }

    /// The status entry of a port.
    pub fn port(&self, name: &str) -> serde_json::Value {
        let s = self.status_json();
        s["fabric"]["switches"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|sw| sw["ports"].as_array().unwrap().iter())
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no port {name} in {s}"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // What `down` said is shown with a failing test's output.
        if let Ok(out) = Command::new(bin()).arg("down").arg(&self.file).output() {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// Runs a shell command; returns its output whatever the exit status.
pub fn sh(cmd: &str) -> Output {
    Command::new("sh").arg("-c").arg(cmd).output().unwrap()
}

/// Runs a command in a host's namespace and insists that it succeeds.
pub fn exec_ok(host: &str, cmd: &str) -> String {
    let out = sh(&format!("ip netns exec {host} {cmd}"));
    assert!(
        out.status.success(),
        "`{cmd}` in {host} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a shell script in a host's namespace and insists that it
/// succeeds.
pub fn script_ok(host: &str, script: &str) -> String {
    run_in_ok(host, &["sh", "-c", script])
}

/// Runs a Python program in a host's namespace and insists that it
/// succeeds; returns what it printed.
pub fn python_ok(host: &str, program: &str) -> String {
    run_in_ok(host, &["python3", "-c", program])
}

/// A Python program running in a host's namespace until dropped.
pub fn python_in_background(host: &str, program: &str) -> Background {
    Background::spawn(&["ip", "netns", "exec", host, "python3", "-c", program])
}

/// Runs `argv` in a host's namespace and insists that it succeeds.
fn run_in_ok(host: &str, argv: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", host])
        .args(argv)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{}` in {host} failed:\n{}\n{}",
        argv.last().unwrap_or(&""),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// tests/tools/hostile.py: frames with valid checksums, sent raw.
pub fn hostile_py() -> String {
    format!(
        "{}/../../tests/tools/hostile.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Runs hostile.py in `host`'s eth0 toward the MAC `to` with `args`;
/// returns how many frames it sent.
pub fn hostile(host: &str, to: &str, args: &str) -> u64 {
    let out = exec_ok(host, &format!("python3 {} eth0 {to} {args}", hostile_py()));
    out.trim()
        .strip_prefix("sent ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("hostile.py {args}: {out}"))
}

/// The resident memory of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Stops `lab` (the topology `text`) and checks it left nothing behind.
pub fn stop_and_assert_clean(lab: Lab, text: &str) {
    let name = lab.name.clone();
    let hosts: Vec<String> = topology::parse(text, &name)
        .unwrap()
        .hosts
        .iter()
        .map(|h| h.name.clone())
        .collect();
    drop(lab);
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    assert_clean(&name, &hosts);
}

pub fn namespaces() -> String {
    String::from_utf8_lossy(&sh("ip netns list").stdout).into_owned()
}

/// Asserts that nothing of the given namespaces, or of the lab's state, is left.
pub fn assert_clean(lab: &str, hosts: &[&str]) {
    let list = namespaces();
    for h in hosts {
        assert!(
            !list.split_whitespace().any(|n| n == *h),
            "namespace {h} left behind: {list}"
        );
        let dir = format!("/etc/netns/{h}");
        assert!(
            !std::path::Path::new(&dir).exists(),
            "{dir} left behind, holding: {}",
            String::from_utf8_lossy(&sh(&format!("ls -la {dir}")).stdout)
        );
    }
    assert!(
        !std::path::Path::new(&format!("/run/scratchnet/{lab}.json")).exists(),
        "state file left behind"
    );
    assert!(
        !std::path::Path::new(&format!("/run/scratchnet/{lab}.sock")).exists(),
        "control socket left behind"
    );
    assert!(
        !std::path::Path::new(&format!("/run/scratchnet-{lab}-ca.pem")).exists(),
        "CA certificate left behind"
    );
}

/// A background process for a test (a server in a host), killed when
/// dropped, its output detached so that it never holds the test's pipes.
pub struct Background(Child);

impl Background {
    pub fn spawn(argv: &[&str]) -> Background {
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Background(child)
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The hop addresses `traceroute -n -q 1` from `host` to `dst` prints
/// (`host` "" runs it in the machine's own namespace).
pub fn hops(host: &str, dst: &str) -> Vec<String> {
    hops_with(host, dst, "")
}

/// [`hops`] with more traceroute options (`-I`: ICMP echo probes, which
/// a CPE firewall lets through where UDP probes to closed ports are
/// unsolicited).
pub fn hops_with(host: &str, dst: &str, options: &str) -> Vec<String> {
    let cmd = format!("traceroute {options} -n -q 1 -w 2 {dst}");
    let out = if host.is_empty() {
        String::from_utf8_lossy(&sh(&cmd).stdout).into_owned()
    } else {
        exec_ok(host, &cmd)
    };
    out.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(str::to_owned)
        .collect()
}

/// Starts `scratchnet trace ARGS` on the reference lab; returns its
/// output once it has ended (it stops by itself after `-c`).
pub fn trace_while(args: &[&str], traffic: impl FnOnce()) -> String {
    let child = Command::new(bin())
        .arg("trace")
        .args(args)
        .args(["--lab", "reference"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    traffic();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `host` holds a global IPv6 address that has finished
/// duplicate address detection; returns it.
pub fn global_address(host: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = exec_ok(host, "ip -6 -o addr show dev eth0 scope global");
        let settled = out
            .lines()
            .find(|l| !l.contains("tentative"))
            .and_then(|l| l.split_whitespace().nth(3))
            .map(|a| a.split('/').next().unwrap().to_owned());
        if let Some(a) = settled {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "{host} has no usable global IPv6 address: {out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
