//! The threads that read the fabric's device ports: one per core, each a
//! single-threaded tokio runtime serving the ports of the nodes given to
//! it, a switch's ports (or a router's) all on one thread, unless it has
//! more than [`SHARED_PORTS`].
//!
//! Why not the lab's multi-threaded runtime: its workers steal tasks from
//! one another, so the reader of a flow's data, the reader of its
//! acknowledgements and the wake-ups between them wander over every core,
//! and each frame is read on a core where it is cold. On a 2-core machine,
//! two TCP flows on two switches reached 1.5x one flow's rate that way;
//! with a thread per switch a flow is read, forwarded and written by one
//! thread, and flows on two switches run side by side on two cores
//! (docs/architecture.md, "Threads"; docs/BENCHMARKS.md). Frames between
//! switches still cross threads as they always did: the reader that takes
//! a frame carries it through every node to the device it leaves by.

use std::collections::HashMap;
use std::io;
use std::thread::JoinHandle;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The most device ports of one node read on one thread. A switch with
/// more (a lab of hundreds of hosts on one segment) has its ports dealt
/// over every thread: its hosts' many flows and broadcasts need every
/// core more than any one flow needs its two ends on one.
pub(crate) const SHARED_PORTS: usize = 32;

/// For the node each port is plugged into, in order, the key of the
/// thread that reads it (see [`Shards::thread`]): the node's index, or for
/// a node with more than [`SHARED_PORTS`] ports, the node's index plus the
/// port's rank among them.
pub(crate) fn keys(nodes: &[usize]) -> Vec<usize> {
    let mut ports: HashMap<usize, usize> = HashMap::new();
    for n in nodes {
        *ports.entry(*n).or_default() += 1;
    }
    let mut rank: HashMap<usize, usize> = HashMap::new();
    nodes
        .iter()
        .map(|&n| {
            let r = rank.entry(n).or_default();
            *r += 1;
            if ports[&n] > SHARED_PORTS {
                n + *r
            } else {
                n
            }
        })
        .collect()
}

/// The reader threads. Dropping them stops each thread's runtime, which
/// drops its tasks, and waits for the threads to end.
pub(crate) struct Shards {
    threads: Vec<Shard>,
}

struct Shard {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Shards {
    /// `n` threads, named `fabric-0`..; an error if one could not start.
    pub(crate) fn start(n: usize) -> io::Result<Shards> {
        let mut shards = Shards {
            threads: Vec::with_capacity(n),
        };
        for i in 0..n {
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("fabric-{i}"))
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    match runtime {
                        Ok(runtime) => {
                            let _ = handle_tx.send(Ok(runtime.handle().clone()));
                            runtime.block_on(async {
                                let _ = stopped.await;
                            });
                        }
                        Err(e) => {
                            let _ = handle_tx.send(Err(e));
                        }
                    }
                })?;
            let handle = handle_rx
                .recv()
                .map_err(|_| io::Error::other("a fabric thread ended as it started"))??;
            shards.threads.push(Shard {
                handle,
                stop: Some(stop),
                thread: Some(thread),
            });
        }
        Ok(shards)
    }

    /// The runtime of the thread for `key` (from [`keys`]).
    pub(crate) fn thread(&self, key: usize) -> Option<&Handle> {
        let n = self.threads.len();
        (n > 0).then(|| &self.threads[key % n].handle)
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        for s in &mut self.threads {
            drop(s.stop.take());
        }
        for s in &mut self.threads {
            if let Some(t) = s.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_s_ports_share_a_thread_unless_it_has_many() {
        assert_eq!(keys(&[0, 0, 1, 1, 0]), [0, 0, 1, 1, 0]);
        let big: Vec<usize> = std::iter::repeat_n(3, SHARED_PORTS + 1)
            .chain([5])
            .collect();
        let k = keys(&big);
        assert_eq!(k[..3], [4, 5, 6]);
        assert_eq!(k[SHARED_PORTS + 1], 5);
    }
}
