//! The threads that read the fabric's device ports: one per core, each a
//! single-threaded tokio runtime serving the ports of the nodes given to
//! it, a switch's ports (or a router's) all on one thread.
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

use std::io;
use std::thread::JoinHandle;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

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

    /// The runtime of the thread that serves node `node`'s ports.
    pub(crate) fn for_node(&self, node: usize) -> Option<&Handle> {
        let n = self.threads.len();
        (n > 0).then(|| &self.threads[node % n].handle)
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
