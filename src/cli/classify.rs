//! `glimpse classify`: photos through a timm network, top-k classes out.

use super::run::Device;
use anyhow::{bail, Context, Result};
use clap::Args;
use glimpse::blocks::{self, BuildOptions};
use glimpse::classify::{self, report, Labels, Outcome};
use glimpse::gpu::Gpu;
use glimpse::graph::{Graph, Plan, Tensors};
use glimpse::output::REWRITE_EVERY;
use glimpse::preprocess::{Interpolation, Preprocess};
use glimpse::tensorfile::TensorFile;
use glimpse::viz::photo;
use glimpse::weights::Weights;
use glimpse::{Shape, Tensor};
use indicatif::ProgressBar;
use std::path::PathBuf;
use std::time::Instant;

/// Most bytes one batch's input tensor may take: `--batch-size` x 3 x S x S floats.
const MAX_BATCH_BYTES: u64 = 1 << 30;

/// Arguments of `glimpse classify`.
#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// A network architecture with timm's name, e.g. timm.skresnet18 (see `glimpse run --help`).
    #[arg(long)]
    arch: String,
    /// The network's state_dict as .safetensors (omit for architectures without weights).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Images (PNG, JPEG) and folders of images (their own files, not subfolders).
    #[arg(required = true, value_name = "IMAGE|DIR")]
    inputs: Vec<PathBuf>,
    /// How many of the most probable classes to show per image.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    topk: u32,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also write the results as CSV (path,rank,index,label,prob) to this file.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Images per network run.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
    /// The crop's side (default: the network's pretrained input size).
    #[arg(long, value_name = "S")]
    img_size: Option<u32>,
    /// The crop's share of the resized shorter side, in (0, 1] (default: the network's, else 0.875).
    #[arg(long, value_name = "P")]
    crop_pct: Option<f64>,
    /// Resampling filter for the resize: bicubic, bilinear or nearest (default: the network's).
    #[arg(long, value_parser = parse_interpolation)]
    interpolation: Option<Interpolation>,
    /// Per-channel mean, R,G,B (default: the network's, else ImageNet's).
    #[arg(long, value_name = "A,B,C", value_parser = parse_triple)]
    mean: Option<[f32; 3]>,
    /// Per-channel standard deviation, R,G,B (default: the network's, else ImageNet's).
    #[arg(long, value_name = "A,B,C", value_parser = parse_triple)]
    std: Option<[f32; 3]>,
    /// Class names, one per line (default: ImageNet's for 1000 classes, else `class N`).
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// Run on the GPU or on the CPU reference executor.
    #[arg(long, value_enum, default_value = "gpu")]
    device: Device,
    /// A network argument with timm's name, e.g. attn_layer=cbam.
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    args: Vec<String>,
}

fn parse_interpolation(s: &str) -> std::result::Result<Interpolation, String> {
    Interpolation::parse(s).ok_or_else(|| format!("'{s}' is not bicubic, bilinear or nearest"))
}

/// Three comma-separated numbers, each read as a Python float then rounded to f32 (what
/// torch does with timm's mean and std).
fn parse_triple(s: &str) -> std::result::Result<[f32; 3], String> {
    let v: Vec<f64> =
        s.split(',').map(|p| p.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    match v[..] {
        [a, b, c] => Ok([a as f32, b as f32, c as f32]),
        _ => Err(format!("expected three comma-separated numbers, got {}", v.len())),
    }
}

/// The preprocessing: the network's pretrained configuration with the overrides applied.
fn preprocessing(a: &ClassifyArgs) -> Result<Preprocess> {
    let arch = blocks::arch(&a.arch)?;
    let mut p = match (&arch.pretrained, a.img_size) {
        (Some(cfg), _) => Preprocess::from_pretrained(cfg)?,
        (None, Some(size)) => Preprocess::imagenet(size),
        (None, None) => bail!(
            "{} has no pretrained preprocessing configuration; give --img-size \
             (and --crop-pct, --interpolation, --mean, --std where timm's defaults do not fit)",
            arch.name
        ),
    };
    p.size = a.img_size.unwrap_or(p.size);
    p.crop_pct = a.crop_pct.unwrap_or(p.crop_pct);
    p.interpolation = a.interpolation.unwrap_or(p.interpolation);
    p.mean = a.mean.unwrap_or(p.mean);
    p.std = a.std.unwrap_or(p.std);
    p.validate()?;
    Ok(p)
}

/// The network for one batch size at a time, rebuilt when the size changes (the last batch).
struct Network<'a> {
    a: &'a ClassifyArgs,
    file: TensorFile,
    size: usize,
    gpu: Option<Gpu>,
    built: Option<(usize, Graph, Option<Plan>)>,
}

impl Network<'_> {
    /// Logits `y` for a batch `x` [N, 3, S, S].
    fn run(&mut self, x: Tensor) -> Result<Tensor> {
        let n = x.shape().dims()[0];
        if self.built.as_ref().is_none_or(|(built, ..)| *built != n) {
            self.built = None; // free the old plan's buffers before the new one allocates
            let source = self.a.weights.as_ref().map_or("no weights".into(), |p| p.display().to_string());
            // build consumes the weights: a fresh Weights over the tensors read once.
            let weights = Weights::new(self.file.clone(), source);
            let shape = Shape::new(&[n, 3, self.size, self.size])?;
            let options = BuildOptions { maps: false, ..Default::default() };
            let graph = blocks::build(&self.a.arch, &shape, weights, &self.a.args, options)?;
            let plan = match &self.gpu {
                Some(gpu) => Some(Plan::compile(gpu, &graph)?),
                None => None,
            };
            self.built = Some((n, graph, plan));
        }
        let (_, graph, plan) = self.built.as_ref().expect("built above");
        let feed = Tensors::from([("x".to_string(), x)]);
        let mut out = match (plan, &self.gpu) {
            (Some(plan), Some(gpu)) => plan.run(gpu, &feed)?,
            _ => graph.run_cpu(&feed)?,
        };
        out.remove("y").context("the network has no output y")
    }
}

/// Runs `glimpse classify`: a table per image on stdout, failures on stderr, the reports, and
/// a progress bar with the count and time left on stderr while it works.
pub fn classify(a: ClassifyArgs, out: super::Output) -> Result<()> {
    let start = Instant::now();
    let pre = preprocessing(&a)?;
    let size = pre.size as usize;
    let batch = a.batch_size as usize;
    let batch_bytes = batch as u64 * 3 * (size * size) as u64 * 4;
    if batch_bytes > MAX_BATCH_BYTES {
        bail!(
            "--batch-size {batch} at {size} x {size} needs {} MiB of input per batch, over {} MiB; use a smaller batch",
            batch_bytes >> 20,
            MAX_BATCH_BYTES >> 20
        );
    }
    let inputs = classify::collect_images(&a.inputs)?;
    if inputs.is_empty() {
        bail!(
            "no .png, .jpg or .jpeg images in {}",
            a.inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let reports: Vec<(&str, &std::path::Path)> = [("--json", &a.json), ("--csv", &a.csv)]
        .into_iter()
        .filter_map(|(flag, p)| p.as_deref().map(|p| (flag, p)))
        .collect();
    let mut read: Vec<PathBuf> = inputs.clone();
    read.extend(a.weights.iter().chain(&a.labels).cloned());
    glimpse::output::check_outputs(&reports, &read)?;
    let file = match &a.weights {
        Some(p) => TensorFile::read(p)?,
        None => TensorFile::default(),
    };
    let gpu = match a.device {
        Device::Gpu => Some(Gpu::new()?),
        Device::Cpu => None,
    };
    if let Some(advice) = gpu.as_ref().and_then(|g| g.adapter().advice()) {
        out.note(format_args!("note: {advice}"));
    }
    let device = gpu.as_ref().map_or("the CPU reference executor".to_string(), |g| g.adapter().to_string());
    out.note(format_args!(
        "{}: {} image(s), {size} x {size} crops (crop_pct {}, {}), batches of {batch}, on {device}",
        a.arch,
        inputs.len(),
        pre.crop_pct,
        pre.interpolation.name()
    ));
    let bar = out.bar(inputs.len() as u64, super::IMAGES_BAR);
    let mut net = Network { a: &a, file, size, gpu, built: None };
    let mut labels: Option<Labels> = None;
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(inputs.len());
    let mut pending: Vec<(usize, Tensor)> = Vec::new();
    // The reports are rewritten as images finish (after the first batch, then at most every
    // REWRITE_EVERY), so an interrupted run leaves valid reports of the images done.
    let mut reported: Option<Instant> = None;
    for (i, path) in inputs.iter().enumerate() {
        outcomes.push(Outcome { path: path.clone(), result: Err("not classified".into()) });
        match photo::load(path).and_then(|img| pre.apply(&img)) {
            Ok(x) => pending.push((i, x)),
            Err(e) => {
                bar.suspend(|| eprintln!("{}", with_path(path, &e.to_string())));
                outcomes[i].result = Err(e.to_string());
                bar.inc(1);
            }
        }
        if pending.len() == batch || (i + 1 == inputs.len() && !pending.is_empty()) {
            let done = std::mem::take(&mut pending);
            classify_batch(&mut net, done, a.topk as usize, &mut labels, &mut outcomes, &bar)?;
            // Between batches every outcome so far is final.
            if i + 1 < inputs.len() && reported.is_none_or(|t| t.elapsed() >= REWRITE_EVERY) {
                let so_far = format!("{} of {} image(s) done", outcomes.len(), inputs.len());
                report::write(a.json.as_deref(), a.csv.as_deref(), &outcomes, Some(&so_far))?;
                reported = Some(Instant::now());
            }
        }
    }
    bar.finish_and_clear();
    report::write(a.json.as_deref(), a.csv.as_deref(), &outcomes, None)?;
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count();
    let seconds = start.elapsed().as_secs_f64();
    out.note(format_args!(
        "classified {} of {} image(s) in {seconds:.2} s ({:.2} images/s)",
        outcomes.len() - failed,
        outcomes.len(),
        (outcomes.len() - failed) as f64 / seconds.max(1e-9)
    ));
    if failed > 0 {
        bail!("{failed} of {} image(s) could not be classified (see above)", outcomes.len());
    }
    Ok(())
}

/// `path: message`, unless the message already starts with the path (file errors do).
fn with_path(path: &std::path::Path, msg: &str) -> String {
    let p = path.display().to_string();
    if msg.starts_with(&format!("{p}: ")) {
        msg.to_string()
    } else {
        format!("{p}: {msg}")
    }
}

/// Runs one batch and records (and prints, above the progress bar) each image's top classes.
fn classify_batch(
    net: &mut Network,
    images: Vec<(usize, Tensor)>,
    topk: usize,
    labels: &mut Option<Labels>,
    outcomes: &mut [Outcome],
    bar: &ProgressBar,
) -> Result<()> {
    let n = images.len();
    let size = net.size;
    let mut data = Vec::with_capacity(n * 3 * size * size);
    for (_, x) in &images {
        data.extend_from_slice(x.data());
    }
    let y = net.run(Tensor::new(Shape::new(&[n, 3, size, size])?, data)?)?;
    let (rows, classes) = classify::logit_rows(&y)?;
    if rows != n {
        bail!("the network gave {rows} rows of logits for {n} images");
    }
    if labels.is_none() {
        *labels = Some(Labels::for_classes(classes, net.a.labels.as_deref())?);
    }
    let labels = labels.as_ref().expect("set above");
    for (row, (i, _)) in images.iter().enumerate() {
        let outcome = &mut outcomes[*i];
        outcome.result =
            classify::top_k(&y.data()[row * classes..(row + 1) * classes], topk, labels).map_err(|e| e.to_string());
        bar.suspend(|| match &outcome.result {
            Ok(top) => {
                println!("{}", outcome.path.display());
                for (rank, r) in top.iter().enumerate() {
                    println!("  {:>2}  {:>7.3}%  {:>5}  {}", rank + 1, r.prob * 100.0, r.index, r.label);
                }
            }
            Err(e) => eprintln!("{}", with_path(&outcome.path, e)),
        });
        bar.set_message(outcome.path.display().to_string());
        bar.inc(1);
    }
    Ok(())
}
