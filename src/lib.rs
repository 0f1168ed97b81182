//! glimpse runs the classic computer-vision attention modules (CBAM, SKNet's
//! selective kernel, Non-local blocks, hard attention) on any GPU through wgpu,
//! with every operator a hand-written WGSL compute shader checked against a CPU
//! reference.
//!
//! Module map:
//! - [`bench`]: the benchmark harness (checked, timed workloads; table, JSON, CSV, SVG, comparisons).
//! - [`blocks`]: the attention blocks (tutorial and timm) as graph builders, by name.
//! - [`gpu`]: the only code that touches wgpu (context, tensors, dispatch, readback, timing).
//! - [`graph`]: graphs of ops, the fusion pass (named rules over the canonical graph), the GPU plan and the CPU executor.
//! - [`models`]: whole networks from a model file (weights + a JSON layer list in its metadata).
//! - [`ops`]: one module per operator: arguments, CPU reference, encoder, cost, cases.
//! - [`preprocess`]: timm's eval transform (Pillow's resize, centre crop, normalisation), bit for bit.
//! - [`classify`]: image lists, softmax and top-k, class labels, and the JSON / CSV reports.
//! - [`check`]: GPU-vs-reference comparison and the tolerance table.
//! - [`tensor`]: CPU tensors and checked shapes.
//! - [`weights`]: PyTorch state_dicts by name, shape checks, BatchNorm folding.
//! - [`output`]: checks on output paths before the work starts (never an input, a folder or a device).
//! - [`tensorfile`]: .safetensors reading (validated, converted to f32) and atomic writing.
//! - [`error`]: the one error type.
//! - [`walk`]: which picture files a command reads (folders walked, each real folder once).
//! - [`viz`]: attention-map pictures: colormaps, overlays, charts, contact sheets, the HTML report.

pub mod bench;
pub mod blocks;
pub mod check;
pub mod classify;
pub mod error;
pub mod gpu;
pub mod graph;
pub mod models;
pub mod ops;
pub mod output;
pub mod preprocess;
pub mod tensor;
pub mod tensorfile;
pub mod viz;
pub mod walk;
pub mod weights;

pub use error::{Error, Result};
pub use tensor::{Shape, Tensor};
