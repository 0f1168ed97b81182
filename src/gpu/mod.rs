//! The only code that touches wgpu: the device context, GPU tensors, the
//! pipeline cache, dispatch recording and the one readback path.
//!
//! wgpu renames its API between major versions; keeping every wgpu type in
//! this folder means an upgrade touches nothing else.

mod adapters;
mod buffer;
mod compile;
mod context;
mod dispatch;
mod params;
mod pipelines;
mod profile;
mod scratch;
pub use scratch::{slot_bytes_after, Derived};

pub use adapters::{list_adapters, AdapterSummary};
pub use buffer::GpuTensor;
pub use compile::PipelineCompile;
pub use context::{Gpu, GpuOptions};
pub use dispatch::Recipe; // what a Dispatch was made from (check --export)
pub use dispatch::{Dispatch, Kernel};
pub use params::{ParamsBinding, COPY_PARAMS, ENTRY_POINT, PARAMS_STORAGE, PARAMS_UNIFORM};
pub use profile::{fixed_subgroup_width, DeviceProfile, SUBGROUP_WIDTHS};
