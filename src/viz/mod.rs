//! Attention-map visualisation: colormaps, overlays (the `render_overlay` kernel or its CPU
//! reference), charts, contact sheets and the HTML report behind `glimpse map`.

pub mod colormap;

pub use colormap::Colormap;
