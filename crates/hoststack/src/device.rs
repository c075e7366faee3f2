//! The smoltcp `Device` of a service host: one received frame in, sent
//! frames out into a reused list, buffers from a pool.
//!
//! The interface never sees the fabric directly. The stack hands it one
//! frame at a time (already cut to wire size with complete checksums by the
//! fabric's egress path) together with the socket set that frame belongs
//! to, and collects what it sends.

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use wire::{Frame, FramePool};

/// A device offering at most one frame and collecting transmissions.
pub(crate) struct Port<'a> {
    pub rx: Option<&'a [u8]>,
    pub tx: &'a mut Vec<Frame>,
    pub pool: &'a mut FramePool,
    /// The largest Ethernet frame, without FCS.
    pub max_frame: usize,
}

impl phy::Device for Port<'_> {
    type RxToken<'b>
        = RxToken<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = TxToken<'b>
    where
        Self: 'b;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let frame = self.rx.take()?;
        Some((
            RxToken(frame),
            TxToken {
                tx: self.tx,
                pool: self.pool,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        Some(TxToken {
            tx: self.tx,
            pool: self.pool,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.max_frame;
        caps
    }
}

pub(crate) struct RxToken<'a>(&'a [u8]);

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

pub(crate) struct TxToken<'a> {
    tx: &'a mut Vec<Frame>,
    pool: &'a mut FramePool,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = self.pool.get();
        frame.set_len(len);
        let r = f(frame.data_mut());
        self.tx.push(frame);
        r
    }
}
