//! `scratchnet graph`: a lab's topology as a picture — Graphviz dot,
//! Mermaid (which GitHub and many editors render), or SVG through
//! Graphviz. Offline: it reads the topology file, no lab need run.
//!
//! Switches are boxes with their subnet, hosts ellipses, service hosts
//! ellipses naming what they run, routers octagons naming NAT and DHCP;
//! each edge is an interface, labelled with its address; a TUN uplink is
//! an edge to "the machine".

use anyhow::{bail, Context, Result};
use std::fmt::Write;
use std::io::Write as _;
use topology::{Attachment, HostAddress, HostAddress6, Topology};

/// A node or an edge of the picture, independent of the output format.
enum Shape {
    Switch,
    Host,
    Service,
    Router,
    Machine,
}

struct Graph {
    /// (id, label lines, shape)
    nodes: Vec<(String, Vec<String>, Shape)>,
    /// (from, to, label)
    edges: Vec<(String, String, String)>,
}

fn graph(lab: &Topology) -> Graph {
    let mut g = Graph {
        nodes: Vec::new(),
        edges: Vec::new(),
    };
    for s in &lab.switches {
        let mut label = vec![s.name.clone()];
        label.extend(s.subnet.map(|n| n.to_string()));
        label.extend(s.subnet6.map(|n| n.to_string()));
        g.nodes.push((s.name.clone(), label, Shape::Switch));
    }
    for h in &lab.hosts {
        let v4 = match h.address {
            HostAddress::Static(n) => Some(n.addr().to_string()),
            HostAddress::Dhcp => Some("dhcp".to_owned()),
            HostAddress::None => None,
        };
        let v6 = match h.address6 {
            Some(HostAddress6::Static(n)) => Some(n.addr().to_string()),
            Some(HostAddress6::Slaac) => Some("slaac".to_owned()),
            Some(HostAddress6::Dhcp6) => Some("dhcp6".to_owned()),
            None => None,
        };
        // The link carries the IPv4 address (an IPv6-only host's IPv6
        // one); the host's box, its IPv6 configuration.
        let mut label = vec![h.name.clone()];
        let addr = match (v4, v6) {
            (Some(a), v6) => {
                label.extend(v6);
                a
            }
            (None, v6) => v6.unwrap_or_default(),
        };
        g.nodes.push((h.name.clone(), label, Shape::Host));
        g.edges.push((h.name.clone(), h.switch.clone(), addr));
    }
    for s in &lab.services {
        let label = vec![s.name.clone(), s.kind().name().to_owned()];
        g.nodes.push((s.name.clone(), label, Shape::Service));
        g.edges.push((
            s.name.clone(),
            s.switch.clone(),
            s.address.addr().to_string(),
        ));
    }
    let mut machine = false;
    for r in &lab.routers {
        let mut label = vec![r.name.clone()];
        let mut roles = Vec::new();
        if r.nat.is_some() {
            roles.push("NAT");
        }
        if !r.dhcp.is_empty() {
            roles.push("DHCP");
        }
        if !roles.is_empty() {
            label.push(roles.join(", "));
        }
        g.nodes.push((r.name.clone(), label, Shape::Router));
        for i in &r.interfaces {
            let to = match &i.attachment {
                Attachment::Switch(sw) => sw.clone(),
                Attachment::Tun { .. } => {
                    machine = true;
                    "the machine".to_owned()
                }
            };
            g.edges
                .push((r.name.clone(), to, i.address.addr().to_string()));
        }
    }
    if machine {
        let label = vec!["the machine".to_owned(), "(root namespace)".to_owned()];
        g.nodes
            .push(("the machine".to_owned(), label, Shape::Machine));
    }
    g
}

/// Graphviz dot.
fn dot(lab: &Topology, g: &Graph) -> String {
    let mut out = format!(
        "graph \"{}\" {{\n  layout=neato; overlap=false; splines=true;\n  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
        lab.name
    );
    for (id, label, shape) in &g.nodes {
        let shape = match shape {
            Shape::Switch => "box, style=filled, fillcolor=\"#dde8f5\"",
            Shape::Host => "ellipse",
            Shape::Service => "ellipse, style=filled, fillcolor=\"#e8f5dd\"",
            Shape::Router => "octagon, style=filled, fillcolor=\"#f5eadd\"",
            Shape::Machine => "box3d",
        };
        let _ = writeln!(
            out,
            "  \"{id}\" [label=\"{}\", shape={shape}];",
            label.join("\\n")
        );
    }
    for (a, b, label) in &g.edges {
        let _ = writeln!(out, "  \"{a}\" -- \"{b}\" [label=\"{label}\"];");
    }
    out.push_str("}\n");
    out
}

/// Mermaid flowchart; node ids are n0, n1... (names hold dashes).
fn mermaid(g: &Graph) -> String {
    let mut out = String::from("flowchart LR\n");
    let id = |name: &str| {
        g.nodes
            .iter()
            .position(|(n, _, _)| n == name)
            .map_or("unknown".to_owned(), |i| format!("n{i}"))
    };
    for (i, (_, label, shape)) in g.nodes.iter().enumerate() {
        let text = label.join("<br/>");
        let node = match shape {
            Shape::Switch => format!("[[\"{text}\"]]"),
            Shape::Host => format!("([\"{text}\"])"),
            Shape::Service => format!("([\"{text}\"])"),
            Shape::Router => format!("{{{{\"{text}\"}}}}"),
            Shape::Machine => format!("[/\"{text}\"/]"),
        };
        let _ = writeln!(out, "  n{i}{node}");
    }
    for (a, b, label) in &g.edges {
        let _ = writeln!(out, "  {} ---|\"{label}\"| {}", id(a), id(b));
    }
    out
}

/// The lab as `format` (dot, mermaid or svg) on stdout.
pub fn run(lab: &Topology, format: &str) -> Result<()> {
    let g = graph(lab);
    let text = match format {
        "dot" => dot(lab, &g),
        "mermaid" => mermaid(&g),
        "svg" => svg(&dot(lab, &g))?,
        other => bail!("`{other}` is not a format: say dot, mermaid or svg"),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

/// Lays the dot graph out with Graphviz.
fn svg(dot: &str) -> Result<String> {
    let mut child = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!(
                "SVG needs Graphviz's `dot`: apt-get install graphviz, or use --format dot or mermaid"
            ),
            _ => anyhow::Error::new(e).context("cannot run dot"),
        })?;
    child
        .stdin
        .take()
        .context("dot's stdin")?
        .write_all(dot.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("dot failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
