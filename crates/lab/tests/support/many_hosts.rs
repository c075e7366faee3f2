//! A lab of many simulated hosts, shared by the simulator's scale test
//! and the `sim-scale` example that times it: SWITCHES switches behind one
//! router `gw`, each with a web service host (10.S.0.2) and `per_switch`
//! namespace hosts (played by client stacks), and a GET from every host
//! to the web server of the next switch.

use lab::sim::Exchange;
use std::time::Duration;

pub const SWITCHES: usize = 10;

/// The topology, as a file would give it.
pub fn topology(per_switch: usize) -> String {
    let mut t = String::from("name = \"many-hosts\"\n");
    let mut ifaces = Vec::new();
    for s in 0..SWITCHES {
        t += &format!("[[switch]]\nname = \"s{s}\"\nsubnet = \"10.{s}.0.0/16\"\n");
        ifaces.push(format!(
            "{{ switch = \"s{s}\", address = \"10.{s}.0.1/16\" }}"
        ));
        t += &format!(
            "[[service]]\nname = \"web{s}\"\nkind = \"http\"\nswitch = \"s{s}\"\naddress = \"10.{s}.0.2/16\"\ngateway = \"10.{s}.0.1\"\n"
        );
        for h in 0..per_switch {
            t += &format!(
                "[[host]]\nname = \"h{s}-{h}\"\nswitch = \"s{s}\"\naddress = \"10.{s}.{}.{}/16\"\ngateway = \"10.{s}.0.1\"\n",
                1 + h / 250,
                1 + h % 250
            );
        }
    }
    t += &format!(
        "[[router]]\nname = \"gw\"\ninterfaces = [{}]\n",
        ifaces.join(", ")
    );
    t
}

/// A GET of `/` from every host to the next switch's web server, their
/// starts spread evenly over `spread`.
pub fn gets(per_switch: usize, spread: Duration) -> Vec<Exchange> {
    let n = (SWITCHES * per_switch) as u32;
    let request = b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n".to_vec();
    (0..SWITCHES)
        .flat_map(|s| (0..per_switch).map(move |h| (s, h)))
        .enumerate()
        .map(|(i, (s, h))| {
            let to = format!("10.{}.0.2:80", (s + 1) % SWITCHES);
            let at = spread * i as u32 / n;
            Exchange::new(
                &format!("h{s}-{h}"),
                to.parse().expect("address"),
                request.clone(),
                at,
            )
        })
        .collect()
}
