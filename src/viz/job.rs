//! `glimpse map` as a library call: inputs collected (folders walked), the model built once
//! with its maps, images decoded and run in batches, every image's pictures written, the
//! index rewritten as images finish and once more at the end. A bad image is skipped with its reason and the rest complete; the
//! output folder is checked before any work (writable, holding no input).

use super::figures::{figures, layer_name, LayerInfo, Normalize};
use super::live;
use super::render::{write_image, ImageReport, Picture, Prediction, Renderer, Style};
use super::{html, photo};
use crate::blocks::map_spec;
use crate::blocks::{BuildOptions, Builder};
use crate::budget;
use crate::gpu::{AdapterSummary, Gpu, PipelineCompile};
use crate::graph::{check_finite_image, Fusion, Graph, Plan, Tensors};
use crate::models::{Model, ModelSource};
use crate::output::REWRITE_EVERY;
use crate::tensorfile::{write_atomically, TensorFile};
use crate::walk::{self, Depth, Found};
use crate::weights::Weights;
use crate::{Error, Result, Shape, Tensor};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the network and the overlays run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// The GPU plan and the `render_overlay` kernel.
    Gpu,
    /// The CPU references.
    Cpu,
}

/// Everything `glimpse map` is asked to do.
#[derive(Clone, Debug)]
pub struct MapJob {
    /// The model: a glimpse model file or a named architecture with a state_dict.
    pub model: ModelSource,
    /// Images and folders (walked for .png, .jpg, .jpeg; other pictures are reported as skipped).
    pub inputs: Vec<PathBuf>,
    /// The output folder.
    pub out_dir: PathBuf,
    /// Layers to draw (names as `layer1.0`); all attention layers when empty.
    pub layers: Vec<String>,
    /// Query pixels (x, y) in the model's input grid (photos are resized to it); the default
    /// queries ([`default_queries`]) when empty.
    pub queries: Vec<[usize; 2]>,
    /// Colormap and alpha.
    pub style: Style,
    /// How heat maps are scaled.
    pub normalize: Normalize,
    /// Images per network run.
    pub batch: usize,
    /// GPU or CPU.
    pub device: Device,
}

/// Progress of a job, reported as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// The GPU adapter was opened (not sent on the CPU).
    Adapter { adapter: &'a AdapterSummary },
    /// The inputs were collected.
    Start { images: usize },
    /// An image was written.
    Done { path: &'a Path },
    /// An image was skipped.
    Skipped { path: &'a Path, reason: &'a str },
}

/// What a job did and where the time went.
#[derive(Debug, Default)]
pub struct Summary {
    /// The images written.
    pub images: Vec<ImageReport>,
    /// Inputs skipped, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// How many of `skipped` are pictures in a format glimpse does not read (.webp, .bmp, ...).
    pub unsupported: usize,
    /// OUTDIR/index.html.
    pub index: PathBuf,
    /// Wall time of the whole job.
    pub elapsed: Duration,
    /// Model loading, graph building and plan compilation.
    pub setup: Duration,
    /// Decoding photos and resizing them for the network and for display.
    pub load: Duration,
    /// Network runs (including upload and readback).
    pub network: Duration,
    /// Drawing heat maps over photos.
    pub render: Duration,
    /// Charts, contact sheets, encoding and writing files.
    pub write: Duration,
    /// The device that ran the job.
    pub device: String,
    /// The GPU pipelines compiled for the job, with what each cost (empty on the CPU).
    pub compiles: Vec<PipelineCompile>,
}

/// The queries used when none are given: the centre of the input and the centres of its four
/// quarters, as (x, y) for a width x height input.
pub fn default_queries(width: usize, height: usize) -> Vec<[usize; 2]> {
    let (x, y) = ([width / 2, width / 4, width * 3 / 4], [height / 2, height / 4, height * 3 / 4]);
    vec![[x[0], y[0]], [x[1], y[1]], [x[2], y[1]], [x[1], y[2]], [x[2], y[2]]]
}

/// Why `path` was skipped: the error without the path it starts with.
fn reason(path: &Path, e: Error) -> String {
    let s = e.to_string();
    s.strip_prefix(&format!("{}: ", path.display())).map_or(s.clone(), String::from)
}

fn file_error(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::File { path: path.display().to_string(), msg: msg.to_string() }
}

/// The network for `batch` images with its maps, each Non-local block given the queries
/// converted from the input grid to its own, and what the figures need per layer. This is
/// [`Model::build`] with one query list per layer (Model::build passes one list to all).
fn build(
    file: &TensorFile,
    source: &str,
    model: &Model,
    batch: usize,
    queries: &[[usize; 2]],
) -> Result<(Graph, Vec<LayerInfo>)> {
    let spec = &model.spec;
    let [c, h, w] = spec.input;
    let options = BuildOptions { fusion: Fusion::all(), maps: true, queries: vec![] };
    let mut b = Builder::new(Weights::new(file.clone(), source), options);
    b.attention_inputs = true; // index.html computes the attention row of any clicked pixel
    let mut v = b.graph.input("x", Shape::new(&[batch, c, h, w])?);
    let mut layers = Vec::new();
    for (i, layer) in spec.layers.iter().enumerate() {
        let grid = match b.graph.shape(v).dims() {
            &[_, _, lh, lw] => Some([lh, lw]),
            _ => None,
        };
        // The input pixel (x, y) falls in cell (x * lw / w, y * lh / h) of a block's grid.
        b.queries = grid.map_or(vec![], |[lh, lw]| queries.iter().map(|&[x, y]| [x * lw / w, y * lh / h]).collect());
        b.query_grid = grid; // a whole network as one layer scales them again in each block
        layers.push(LayerInfo { prefix: layer.prefix.clone(), grid, queries: b.queries.clone() });
        v = b.block(&layer.arch, v, &layer.args, &layer.prefix).map_err(|e| {
            Error::invalid(spec.name.clone(), format!("layer {i} ({} at '{}'): {e}", layer.arch, layer.prefix))
        })?;
    }
    Ok((b.finish(v)?, layers))
}

/// Fails if the output folder holds an input, or cannot be created and written to.
fn prepare_out_dir(out_dir: &Path, inputs: &[PathBuf]) -> Result<()> {
    if out_dir.exists() && !out_dir.is_dir() {
        return Err(file_error(out_dir, "the output path exists and is not a folder"));
    }
    if let Ok(dir) = out_dir.canonicalize() {
        if let Some(p) = inputs.iter().find(|p| p.canonicalize().is_ok_and(|p| p.starts_with(&dir))) {
            return Err(file_error(
                out_dir,
                format!(
                    "the output folder holds the input {}; choose another folder (inputs are never overwritten)",
                    p.display()
                ),
            ));
        }
    }
    std::fs::create_dir_all(out_dir)
        .map_err(|e| file_error(out_dir, format!("cannot create the output folder: {e}")))?;
    crate::output::probe_writable(&out_dir.join(".glimpse-write-test"))
        .map_err(|e| file_error(out_dir, format!("the output folder is not writable ({e})")))
}

/// A folder name per input: its file stem with unsafe characters replaced, made unique.
fn folder_names(inputs: &[PathBuf]) -> Vec<String> {
    let mut used = BTreeSet::from(["index.html".to_string()]);
    inputs
        .iter()
        .map(|p| {
            let stem = p.file_stem().map_or("image".into(), |s| s.to_string_lossy().into_owned());
            let base: String =
                stem.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
            let base = base.trim_start_matches('.').to_string();
            let base = if base.is_empty() { "image".to_string() } else { base };
            let mut name = base.clone();
            for k in 2.. {
                if used.insert(name.clone()) {
                    break;
                }
                name = format!("{base}-{k}");
            }
            name
        })
        .collect()
}

/// The top class of row `i` of the logits `y` [N, K], when the network ends in class scores.
fn predict(y: &Tensor, i: usize, labels: &[String]) -> Option<Prediction> {
    let &[_, k] = y.shape().dims() else { return None };
    let row = &y.data()[i * k..(i + 1) * k];
    let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    // Max-subtracted softmax: no overflow for large logits.
    let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
    let (best, &top) = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    let label = if labels.len() == k { labels[best].clone() } else { format!("class {best}") };
    Some(Prediction { label, probability: ((top as f64 - max).exp() / sum) as f32 })
}

/// Rows of a batched tensor for image `i`, as a batch of one.
pub(super) fn image_slice(t: &Tensor, i: usize) -> Result<Tensor> {
    let mut dims = t.shape().dims().to_vec();
    let per = t.shape().numel() / dims[0];
    dims[0] = 1;
    Tensor::new(Shape::new(&dims)?, t.data()[i * per..(i + 1) * per].to_vec())
}

/// Runs the job; `progress` hears of each image as it finishes.
pub fn run(job: &MapJob, progress: &mut dyn FnMut(Event)) -> Result<Summary> {
    let start = Instant::now();
    let alpha = job.style.alpha;
    if !(0.0..=1.0).contains(&alpha) {
        return Err(Error::invalid("map", format!("--alpha {alpha} is not in [0, 1]")));
    }
    if job.batch == 0 {
        return Err(Error::invalid("map", "--batch must be at least 1"));
    }
    let (file, source, model) = job.model.load()?;
    let [_, h, w] = model.spec.input;
    for &[x, y] in &job.queries {
        if x >= w || y >= h {
            return Err(Error::invalid(
                "map",
                format!("query ({x}, {y}) is outside the model's {w} x {h} input (photos are resized to it): X must be below {w} and Y below {h}"),
            ));
        }
    }
    let queries = if job.queries.is_empty() { default_queries(w, h) } else { job.queries.clone() };

    let skip = job.out_dir.canonicalize().ok();
    // Walking an input folder that is the output folder would find nothing (it is left out).
    if let Some(p) = job.inputs.iter().find(|p| p.is_dir() && p.canonicalize().ok() == skip) {
        return Err(file_error(
            &job.out_dir,
            format!(
                "the output folder is the input folder {}; choose another output folder (inputs are never overwritten)",
                p.display()
            ),
        ));
    }
    let mut found = walk::collect(&job.inputs, Depth::Recursive, skip.as_deref())?;
    found.dedup(); // each file mapped once
    let Found { images: inputs, unsupported } = found;
    if inputs.is_empty() {
        let also = match unsupported.len() {
            0 => String::new(),
            n => format!(" ({n} picture(s) in formats glimpse does not read, e.g. {})", unsupported[0].display()),
        };
        return Err(Error::invalid("map", format!("no PNG or JPEG images among the inputs{also}")));
    }
    prepare_out_dir(&job.out_dir, &inputs)?;
    let names = folder_names(&inputs);

    let batch = job.batch.min(inputs.len());
    let (graph, layer_info) = build(&file, &source, &model, batch, &queries)?;
    let all_maps: Vec<String> =
        graph.output_names().into_iter().filter(|n| map_spec(n).is_some()).map(String::from).collect();
    let valid: BTreeSet<&str> = all_maps.iter().filter_map(|n| map_spec(n)).map(|(p, _)| layer_name(p)).collect();
    if let Some(bad) = job.layers.iter().find(|l| !valid.contains(l.trim_end_matches('.'))) {
        let list: Vec<String> = valid.iter().map(|v| format!("'{v}'")).collect();
        return Err(Error::invalid("map", format!("no attention layer '{bad}'; valid: {}", list.join(", "))));
    }
    let maps: Vec<String> = all_maps
        .into_iter()
        .filter(|n| {
            let layer = map_spec(n).map_or("", |(p, _)| layer_name(p));
            job.layers.is_empty() || job.layers.iter().any(|l| l.trim_end_matches('.') == layer)
        })
        .collect();

    // Up front, before any photo is decoded: one batch of inputs (the decoded tensors and
    // the batch made of them), and on the CPU every tensor of the reference run.
    let [c, _, _] = model.spec.input;
    let what = format!("a batch of {batch} input(s) of {c} x {h} x {w} (the decoded photos and the batch)");
    budget::check(&what, budget::f32_bytes(&[2, batch, c, h, w]), budget::HOST_BYTES)?;
    if job.device == Device::Cpu {
        let what = format!("--device cpu on {c} x {h} x {w} input(s), batch {batch} (every tensor of the run)");
        budget::check(&what, graph.cpu_bytes(), budget::HOST_BYTES)?;
    }
    let gpu = match job.device {
        Device::Gpu => {
            let gpu = Gpu::new()?;
            progress(Event::Adapter { adapter: gpu.adapter() });
            Some(gpu)
        }
        Device::Cpu => None,
    };
    let plan = gpu.as_ref().map(|g| Plan::compile(g, &graph)).transpose()?;
    let renderer = Renderer::new(job.style, gpu.as_ref())?;
    let mut summary = Summary {
        index: job.out_dir.join("index.html"),
        device: gpu.as_ref().map_or("CPU reference".into(), |g| g.adapter().to_string()),
        setup: start.elapsed(),
        ..Default::default()
    };
    progress(Event::Start { images: inputs.len() + unsupported.len() });
    for path in &unsupported {
        let ext = path.extension().map_or(String::new(), |e| e.to_string_lossy().to_lowercase());
        let reason = format!("unsupported format (.{ext}): glimpse reads PNG and JPEG");
        progress(Event::Skipped { path, reason: &reason });
        summary.skipped.push((path.clone(), reason));
    }
    summary.unsupported = unsupported.len();

    let settings = format!(
        "colormap {}, alpha {}, normalize {}, batch {batch}, on {}",
        format!("{:?}", job.style.colormap).to_lowercase(),
        job.style.alpha,
        format!("{:?}", job.normalize).to_lowercase(),
        summary.device
    );
    // The index is rewritten as images finish (after the first batch, then at most every
    // output::REWRITE_EVERY), so an interrupted run leaves a valid report of the images done.
    let mut index_written: Option<Instant> = None;
    let mut pending: Vec<(usize, image::RgbImage, Tensor)> = Vec::new();
    let mut next = 0;
    while next < inputs.len() || !pending.is_empty() {
        // Fill a batch with images that decode; skip the rest with their reason.
        while pending.len() < batch && next < inputs.len() {
            let t = Instant::now();
            // With timm's transform, the overlays are drawn over the centre crop the network saw.
            let loaded = photo::load(&inputs[next]).and_then(|p| match &model.preprocess {
                Some(pre) => pre.crop(&p).map(|crop| (pre.normalise(&crop), photo::display(&crop))),
                None => Ok((photo::model_input(&p, &model.spec)?, photo::display(&p))),
            });
            summary.load += t.elapsed();
            match loaded {
                Ok((x, display)) => pending.push((next, display, x)),
                Err(e) => {
                    let reason = reason(&inputs[next], e);
                    progress(Event::Skipped { path: &inputs[next], reason: &reason });
                    summary.skipped.push((inputs[next].clone(), reason));
                }
            }
            next += 1;
        }
        if pending.is_empty() {
            break;
        }
        // A short last batch is padded with zeros; only the real images are drawn.
        let mut x = vec![0.0f32; batch * c * h * w];
        for (slot, (_, _, t)) in pending.iter().enumerate() {
            x[slot * c * h * w..(slot + 1) * c * h * w].copy_from_slice(t.data());
        }
        let feed = Tensors::from([("x".to_string(), Tensor::new(Shape::new(&[batch, c, h, w])?, x)?)]);
        let t = Instant::now();
        let outputs = match &plan {
            Some(plan) => plan.run(gpu.as_ref().expect("a plan has its GPU"), &feed)?,
            None => graph.run_cpu(&feed)?,
        };
        summary.network += t.elapsed();
        let count = pending.len();
        for (slot, (index, display, input)) in pending.drain(..).enumerate() {
            let path = &inputs[index];
            let result = check_finite_image(&outputs, slot, count)
                .map_err(|e| {
                    Error::invalid("map", format!("the network gave NaN or infinite value(s) for this picture: {e}"))
                })
                .and_then(|()| figures(&outputs, &maps, count, slot, job.normalize, &layer_info))
                .and_then(|figs| {
                    let mut slices = Vec::new();
                    for name in maps.iter().chain(outputs.contains_key("y").then(|| "y".to_string()).iter()) {
                        slices.push((name.clone(), image_slice(&outputs[name], slot)?));
                    }
                    // The network's input too: `glimpse run --input {name}/maps.safetensors` reproduces the maps.
                    slices.push(("x".to_string(), Tensor::new(Shape::new(&[1, c, h, w])?, input.data().to_vec())?));
                    let named: Vec<(&str, &Tensor)> = slices.iter().map(|(n, t)| (n.as_str(), t)).collect();
                    let prediction = outputs.get("y").and_then(|y| predict(y, slot, &model.spec.labels));
                    let meta = BTreeMap::from([
                        ("glimpse.source".to_string(), path.display().to_string()),
                        ("glimpse.model".to_string(), model.spec.name.clone()),
                    ]);
                    let source = path.display().to_string();
                    let name = &names[index];
                    let picture = Picture { name, source: &source, display: &display, prediction };
                    let mut report = write_image(&renderer, &job.out_dir, picture, &figs, &named, &meta)?;
                    live::write(&job.out_dir, &mut report, job.style, &figs.heat, &outputs, &maps, slot)?;
                    Ok(report)
                });
            match result {
                Ok(report) => {
                    summary.render += report.render_time;
                    summary.write += report.write_time;
                    summary.images.push(report);
                    progress(Event::Done { path });
                }
                Err(e) => {
                    let reason = reason(path, e);
                    progress(Event::Skipped { path, reason: &reason });
                    summary.skipped.push((path.clone(), reason));
                }
            }
        }
        if index_written.is_none_or(|t| t.elapsed() >= REWRITE_EVERY) {
            let t = Instant::now();
            let so_far = format!("{settings}; unfinished: {next} of {} picture(s) read so far", inputs.len());
            let page = html::index(&model.spec.name, &so_far, &summary.images, &summary.skipped);
            write_atomically(&summary.index, page.as_bytes())?;
            summary.write += t.elapsed();
            index_written = Some(t);
        }
    }
    let page = html::index(&model.spec.name, &settings, &summary.images, &summary.skipped);
    write_atomically(&summary.index, page.as_bytes())?;
    summary.elapsed = start.elapsed();
    summary.compiles = gpu.as_ref().map(Gpu::pipeline_compiles).unwrap_or_default();
    Ok(summary)
}
