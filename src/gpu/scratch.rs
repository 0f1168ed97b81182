//! Scratch shared by the launches of every op on one device: buffers an op's first launch writes
//! and its later launches read (conv2d's Winograd transforms and their GEMMs, repack_pixels' rows
//! for matmul_subgroup, conv2d_phases' planes and padded weights), never holding anything from one
//! op to the next. One buffer per named slot, replaced by a larger one when an op needs more (the
//! launches encoded earlier keep theirs through their bind groups, so a plan holds every size a
//! slot grew through, not only the largest): a network of 18 Winograd convs allocates a few of its
//! convs' scratch, not 18 (BENCHMARKS.md "Winograd F(2x2, 3x3)"; `cargo test --lib
//! winograd_scratch -- --nocapture` prints the totals).
//!
//! Sharing is safe because runs on a device are one at a time (`execute` holds the device's run
//! lock, whichever thread calls it) and an op's launches run back to back inside one run (a plan
//! records its ops' launches in order; `execute` submits them in order, waiting between submits):
//! no other op's launch can come between a slot's write and its read. The slots live as long as
//! the device; a plan counts every slot buffer its launches bind in its memory budget
//! (`Plan::scratch_bytes`).
//!
//! What an op computes from constants alone (its weights in another layout: Winograd's U, the
//! stem's padded rows) is the exception: [`Gpu::derived`] gives it a buffer of its own, which a
//! plan fills once when compiled and counts with its weights.

use super::{Dispatch, Gpu, GpuTensor};
use crate::{Result, Shape};

/// The bytes a slot holds after a request for `shape` when it held `held` (0: no buffer yet): the
/// same where that is enough, else a new buffer's. The one growth rule, shared with the figures
/// that predict a network's scratch (bench/convs.rs).
pub fn slot_bytes_after(held: u64, shape: &Shape) -> u64 {
    held.max(GpuTensor::buffer_bytes(shape))
}

impl Gpu {
    /// A tensor of `shape` in this device's scratch slot `slot`: the slot's buffer where it is large
    /// enough, else a new one that becomes the slot's. Its contents are undefined: write before
    /// reading, within the same op's launches.
    pub fn scratch(&self, slot: &'static str, shape: &Shape) -> Result<GpuTensor> {
        // No invariant spans the map's entries: a panic while it was held leaves nothing to repair.
        let mut slots = self.scratch.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(t) = slots.get(slot) {
            if slot_bytes_after(t.capacity(), shape) == t.capacity() {
                return t.reuse_as(shape);
            }
        }
        let t = self.empty(shape)?;
        slots.insert(slot, t.clone());
        Ok(t)
    }
}

/// Where a launch reading only `sources` writes: see [`Gpu::derived`].
#[derive(Debug)]
pub struct Derived {
    /// The tensor the launch writes and later launches read.
    pub tensor: GpuTensor,
    /// Whether `tensor` is a buffer of its own, filled from constants alone.
    once: bool,
}

impl Derived {
    /// `launch` (the one writing [`Derived::tensor`]) marked for what it is: prepared (run once by a
    /// plan) where every source is constant, else auxiliary (run on every run, as scratch is).
    pub fn mark(&self, launch: Dispatch) -> Dispatch {
        if self.once {
            launch.into_prepared(&self.tensor)
        } else {
            launch.into_auxiliary()
        }
    }
}

impl Gpu {
    /// A tensor of `shape` that one launch computes from `sources` alone (an op's weights in the
    /// layout its kernel reads). Where every source is constant ([`Gpu::upload_constant`]: a plan's
    /// weights) the result never changes: a buffer of its own, and [`Derived::mark`] makes the
    /// launch prepared, which a plan runs once. Otherwise the scratch slot `slot`, written on every
    /// run like any scratch.
    pub fn derived(&self, slot: &'static str, shape: &Shape, sources: &[&GpuTensor]) -> Result<Derived> {
        let once = !sources.is_empty() && sources.iter().all(|t| t.is_constant());
        let tensor = if once { self.empty(shape)? } else { self.scratch(slot, shape)? };
        Ok(Derived { tensor, once })
    }
}
