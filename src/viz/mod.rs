//! Attention-map visualisation behind `glimpse map`: colormaps, heat maps drawn over photos
//! (the `render_overlay` kernel or its CPU reference), charts of channel and branch weights,
//! contact sheets, the HTML report, and the batch job tying them together.
//!
//! - [`colormap`]: turbo, viridis, inferno, jet, gray as 256-entry tables.
//! - [`photo`]: decoding under limits, the model's input, the display copy, PNG encoding.
//! - [`figures`]: map outputs to one image's heat maps (normalised) and charts.
//! - [`draw`]: CPU drawing: a tiny font, colour bars, query markers, bars, contact sheets.
//! - [`chart`]: SVG charts.
//! - [`render`]: one image's files.
//! - [`html`]: writes OUTDIR/index.html.
//! - [`live`]: the data behind the page's live attention rows and hover values.
//! - [`job`]: the whole `glimpse map` run.

pub mod chart;
pub mod colormap;
pub mod draw;
pub mod figures;
pub mod html;
pub mod job;
pub mod live;
pub mod photo;
pub mod render;

pub use colormap::Colormap;
pub use figures::Normalize;
pub use job::{run, Device, Event, MapJob, Summary};
pub use render::Style;
