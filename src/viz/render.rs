//! One image's pictures: the heat maps drawn over the photo (by the `render_overlay` kernel
//! on the GPU, or its CPU reference), colour bars and markers, the charts, the contact sheet
//! and the raw maps, each file written atomically into the image's folder.

use super::chart::{branch_colour, branch_svg, channel_svg};
use super::draw::{bars, contact_sheet, marker, with_colour_bar, Tile};
use super::figures::{Chart, Figures};
use super::{photo, Colormap};
use crate::gpu::{Gpu, GpuTensor};
use crate::ops::render_overlay::RenderOverlay;
use crate::ops::Op;
use crate::tensorfile::{write_atomically, TensorFile};
use crate::{Result, Tensor};
use image::RgbImage;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// How heat maps look.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Style {
    /// The colormap.
    pub colormap: Colormap,
    /// Weight of the colour over the photo, in [0, 1].
    pub alpha: f32,
}

/// Draws heat maps over photos on the GPU or the CPU.
pub struct Renderer<'a> {
    style: Style,
    table: Tensor,
    gpu: Option<(&'a Gpu, GpuTensor)>,
}

impl<'a> Renderer<'a> {
    /// A renderer running `render_overlay` on `gpu`, or its CPU reference when None.
    pub fn new(style: Style, gpu: Option<&'a Gpu>) -> Result<Renderer<'a>> {
        let table = style.colormap.table();
        let gpu = match gpu {
            Some(gpu) => Some((gpu, gpu.upload(&table)?)),
            None => None,
        };
        Ok(Renderer { style, table, gpu })
    }

    /// The style.
    pub fn style(&self) -> Style {
        self.style
    }

    /// Each of `maps` ([1, h, w] with its range lo, hi) drawn over `photo` [3, H, W]: on the
    /// GPU in one submit and one readback.
    pub fn overlays(&self, photo: &Tensor, maps: &[(&Tensor, f32, f32)]) -> Result<Vec<Tensor>> {
        let op = |lo: f32, hi: f32| RenderOverlay { alpha: self.style.alpha, lo, hi };
        let Some((gpu, table)) = &self.gpu else {
            return maps.iter().map(|(m, lo, hi)| op(*lo, *hi).reference(&[photo, m, &self.table])).collect();
        };
        let photo_gpu = gpu.upload(photo)?;
        let (mut dispatches, mut outputs) = (Vec::new(), Vec::new());
        for (m, lo, hi) in maps {
            let (map, out) = (gpu.upload(m)?, gpu.empty(photo.shape())?);
            dispatches.extend(op(*lo, *hi).encode(gpu, &[&photo_gpu, &map, table], &out)?);
            outputs.push(out);
        }
        gpu.run(&dispatches, &outputs.iter().collect::<Vec<_>>())
    }
}

/// The top class of an image.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The class name (from the model's labels, or "class i").
    pub label: String,
    /// Its softmax probability.
    pub probability: f32,
}

/// A file written for an image, relative to the output folder.
#[derive(Clone, Debug)]
pub struct Figure {
    /// Relative path ("cat/layer1.0.spatial.png").
    pub path: String,
    /// Caption.
    pub caption: String,
    /// The attention layer it shows ("layer1.0"; "" for a single block).
    pub layer: String,
}

/// What was written for one image.
#[derive(Clone, Debug)]
pub struct ImageReport {
    /// The image's folder name inside the output folder.
    pub name: String,
    /// The input file, as given.
    pub source: String,
    /// The top class, when the network ends in class scores.
    pub prediction: Option<Prediction>,
    /// Overlays, then charts.
    pub figures: Vec<Figure>,
    /// The contact sheet.
    pub sheet: String,
    /// The raw maps (.safetensors).
    pub maps: String,
    /// The photo as drawn under the maps (display size, no overlay).
    pub photo: String,
    /// Its width and height: each heat map's picture starts with it (a colour bar follows).
    pub photo_size: [u32; 2],
    /// The data behind the page's live attention and hover values (`{name}/live.js`; empty
    /// until written).
    pub live: String,
    /// Time spent drawing heat maps (the overlay kernel) and the rest (charts, encoding, files).
    pub render_time: Duration,
    /// Time spent on charts, the sheet, encoding and writing.
    pub write_time: Duration,
}

/// The attention layer a map output belongs to ("layer1.0.spatial" -> "layer1.0").
fn layer_of(map: &str) -> String {
    crate::blocks::map_spec(map).map_or("", |(prefix, _)| super::figures::layer_name(prefix)).to_string()
}

/// Height of the contact sheet's tiles.
const TILE: u32 = 192;

/// One picture of a map job, as its report names it.
pub struct Picture<'a> {
    /// Its folder name inside the output folder.
    pub name: &'a str,
    /// The input file, as given.
    pub source: &'a str,
    /// The photo at display size.
    pub display: &'a RgbImage,
    /// The top class, when the network ends in class scores.
    pub prediction: Option<Prediction>,
}

/// Draws and writes everything for one picture into `out_dir/name/`: its `figures`, and
/// `maps`, the raw maps (written with `metadata`).
pub fn write_image(
    renderer: &Renderer,
    out_dir: &Path,
    picture: Picture,
    figures: &Figures,
    maps: &[(&str, &Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<ImageReport> {
    let Picture { name, source, display, prediction } = picture;
    let dir = out_dir.join(name);
    std::fs::create_dir_all(&dir).map_err(|e| crate::Error::File {
        path: dir.display().to_string(),
        msg: format!("cannot create the folder: {e}"),
    })?;
    let start = Instant::now();
    let photo_t = photo::to_tensor(display);
    let jobs: Vec<(&Tensor, f32, f32)> = figures.heat.iter().map(|h| (&h.map, h.lo, h.hi)).collect();
    let drawn = renderer.overlays(&photo_t, &jobs)?;
    let render_time = start.elapsed();

    let start = Instant::now();
    let colormap = renderer.style().colormap;
    let mut report = ImageReport {
        name: name.to_string(),
        source: source.to_string(),
        prediction,
        figures: Vec::new(),
        sheet: format!("{name}/sheet.png"),
        maps: format!("{name}/maps.safetensors"),
        photo: format!("{name}/photo.png"),
        photo_size: [display.width(), display.height()],
        live: String::new(),
        render_time,
        write_time: Duration::ZERO,
    };
    write_atomically(&dir.join("photo.png"), &photo::png(display)?)?;
    let mut tiles = vec![Tile { label: "input".into(), image: display.clone() }];
    for (heat, overlay) in figures.heat.iter().zip(drawn) {
        let mut img = photo::from_tensor(&overlay);
        if let Some([fx, fy]) = heat.marker {
            marker(&mut img, fx, fy);
        }
        let file = format!("{}.png", heat.file);
        write_atomically(&dir.join(&file), &photo::png(&with_colour_bar(&img, colormap, heat.lo, heat.hi))?)?;
        let layer = layer_of(&heat.source.0);
        report.figures.push(Figure { path: format!("{name}/{file}"), caption: heat.caption.clone(), layer });
        tiles.push(Tile { label: heat.file.clone(), image: img });
    }
    for chart in &figures.charts {
        let (file, caption, svg, tile) = match chart {
            Chart::Channel { file, caption, weights } => {
                let rows: Vec<Vec<f32>> = weights.iter().map(|&v| vec![v]).collect();
                let tile = bars(&rows, TILE * 3 / 2, TILE, |_, v| colormap.rgb8(v as f64));
                (file, caption, channel_svg(caption, weights, colormap), tile)
            }
            Chart::Branch { file, caption, weights, names } => {
                let channels = weights.first().map_or(0, Vec::len);
                let rows: Vec<Vec<f32>> = (0..channels).map(|c| weights.iter().map(|w| w[c]).collect()).collect();
                let tile = bars(&rows, TILE * 3 / 2, TILE, |m, _| branch_colour(m));
                (file, caption, branch_svg(caption, weights, names), tile)
            }
        };
        let svg_file = format!("{file}.svg");
        write_atomically(&dir.join(&svg_file), svg.as_bytes())?;
        let layer = layer_of(file);
        report.figures.push(Figure { path: format!("{name}/{svg_file}"), caption: caption.clone(), layer });
        tiles.push(Tile { label: file.clone(), image: tile });
    }
    write_atomically(&dir.join("sheet.png"), &photo::png(&contact_sheet(&tiles, TILE)?)?)?;
    TensorFile::write(&dir.join("maps.safetensors"), maps, metadata)?;
    report.write_time = start.elapsed();
    Ok(report)
}
