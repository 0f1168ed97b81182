//! `glimpse map`: attention maps of a model over photos, as pictures, charts and a report.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use glimpse::models::ModelSource;
use glimpse::viz::{self, Colormap, Device, Event, MapJob, Normalize, Style};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

/// Where to run.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MapDevice {
    /// The GPU plan and the render_overlay kernel.
    Gpu,
    /// The CPU references.
    Cpu,
}

/// Arguments of `glimpse map`.
#[derive(Args, Debug)]
pub struct MapArgs {
    /// Model file: .safetensors with `glimpse.network` metadata (or use --arch and --weights).
    #[arg(long, required_unless_present = "arch", conflicts_with = "arch")]
    model: Option<PathBuf>,
    /// A network from `glimpse run --help` (e.g. timm.skresnet18), with --weights.
    #[arg(long, requires = "weights")]
    arch: Option<String>,
    /// The network's PyTorch state_dict as .safetensors (e.g. timm's model.safetensors).
    #[arg(long, requires = "arch")]
    weights: Option<PathBuf>,
    /// A constructor argument with PyTorch's name (with --arch), e.g. attn_layer=cbam.
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    args: Vec<String>,
    /// Input side photos are resized to (with --arch; default: the network's pretrained size).
    #[arg(long)]
    img_size: Option<usize>,
    /// Images (PNG, JPEG) and folders of images (walked with their subfolders, each real folder once).
    #[arg(required = true, value_name = "IMAGE|DIR")]
    inputs: Vec<PathBuf>,
    /// Output folder: a folder per image and index.html.
    #[arg(short = 'o', long = "out", value_name = "OUTDIR")]
    out: PathBuf,
    /// Only these attention layers (comma-separated, e.g. layer1.0,layer2.0).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    layers: Vec<String>,
    /// A query pixel X,Y in the model's input grid (photos are resized to it) whose Non-local
    /// attention is drawn (repeatable). Default: the centre and the centres of the four quarters.
    #[arg(long = "query", value_name = "X,Y")]
    queries: Vec<String>,
    /// Colormap: turbo, viridis, inferno, jet or gray.
    #[arg(long, default_value = "turbo")]
    colormap: Colormap,
    /// Weight of the colour over the photo, 0 to 1.
    #[arg(long, default_value_t = 0.5)]
    alpha: f32,
    /// Heat-map range: image (each map's min..max), batch (min..max over the batch), fixed (0..1).
    #[arg(long, default_value = "image")]
    normalize: Normalize,
    /// Images per network run.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Run on the GPU or the CPU references.
    #[arg(long, value_enum, default_value = "gpu")]
    device: MapDevice,
}

/// Runs `glimpse map`: a progress bar on stderr while it works, a summary at the end, and
/// with the global `--verbose` where the time went (load, network, rendering, writing).
pub fn map(a: MapArgs, out: super::Output) -> Result<()> {
    let model = match (a.model, a.arch, a.weights) {
        (Some(path), _, _) => ModelSource::File(path),
        (None, Some(arch), Some(weights)) => ModelSource::Arch { arch, weights, args: a.args, size: a.img_size },
        _ => bail!("give --model FILE, or --arch NAME with --weights FILE"),
    };
    let job = MapJob {
        model,
        inputs: a.inputs,
        out_dir: a.out,
        layers: a.layers,
        queries: a.queries.iter().map(|q| super::parse_query(q)).collect::<Result<_>>()?,
        style: Style { colormap: a.colormap, alpha: a.alpha },
        normalize: a.normalize,
        batch: a.batch,
        device: match a.device {
            MapDevice::Gpu => Device::Gpu,
            MapDevice::Cpu => Device::Cpu,
        },
    };
    // Hidden while the model loads; drawn from the first image, when stderr is a terminal.
    let bar = ProgressBar::hidden();
    let (mut on_gpu, mut first_image) = (false, None);
    let mut progress = |event: Event| match event {
        Event::Adapter { adapter } => {
            on_gpu = true;
            if out.verbose {
                out.note(format!("adapter: {adapter}"));
            }
            if let Some(advice) = adapter.advice() {
                out.note(format!("note: {advice}"));
            }
        }
        Event::Start { images } => {
            bar.set_draw_target(out.draw_target());
            bar.set_length(images as u64);
            bar.set_style(ProgressStyle::with_template(super::IMAGES_BAR).expect("the template is valid"));
            if on_gpu && !out.quiet {
                first_image = Some(note_a_slow_first_batch(bar.clone()));
            }
        }
        Event::Done { path } => {
            first_image.take(); // the first batch is done: no note
            bar.set_message(path.display().to_string());
            bar.inc(1);
        }
        Event::Skipped { path, reason } => {
            bar.suspend(|| eprintln!("skipped {}: {reason}", path.display()));
            bar.inc(1);
        }
    };
    let summary = viz::run(&job, &mut progress)?;
    bar.finish_and_clear();

    let seconds = summary.elapsed.as_secs_f64();
    let done = summary.images.len();
    println!(
        "mapped {done} image(s), skipped {}, in {seconds:.2} s ({:.2} images/s) on {}",
        summary.skipped.len(),
        done as f64 / seconds.max(1e-9),
        summary.device
    );
    for (path, reason) in &summary.skipped {
        println!("  skipped {}: {reason}", path.display());
    }
    if out.verbose {
        let total = seconds.max(1e-9);
        let share =
            |d: std::time::Duration| format!("{:.3} s ({:.0}%)", d.as_secs_f64(), 100.0 * d.as_secs_f64() / total);
        println!(
            "time: setup {}, decode {}, network {}, render {}, charts+files {}",
            share(summary.setup),
            share(summary.load),
            share(summary.network),
            share(summary.render),
            share(summary.write)
        );
        if let Some(line) = compile_summary(&summary.compiles) {
            println!("{line}");
        }
    }
    println!("report: {}", summary.index.display());
    if done == 0 {
        bail!("no image could be mapped ({} skipped; reasons above)", summary.skipped.len());
    }
    let skipped = summary.skipped.len();
    if skipped > 0 {
        let unreadable = skipped - summary.unsupported;
        let mut why = Vec::new();
        if summary.unsupported > 0 {
            why.push(format!("{} in an unsupported format (glimpse reads PNG and JPEG)", summary.unsupported));
        }
        if unreadable > 0 {
            why.push(format!("{unreadable} that could not be read or mapped"));
        }
        bail!("{skipped} picture(s) skipped: {}; the other {done} were mapped", why.join(", "));
    }
    Ok(())
}

/// `glimpse map --help`'s closing section.
pub const MAP_EXIT_HELP: &str = "Exit status: 0 when every picture was mapped; 1 when the job could not run \
(bad model, arguments or output folder) or when any picture was skipped (undecodable, or in a format other than \
PNG and JPEG, e.g. .webp, .bmp, .tiff). Skipped pictures are listed with their reason in the summary and in \
index.html; the others are still mapped. 130 when interrupted (Ctrl-C, SIGTERM): index.html then lists the pictures finished by its last rewrite (every 2 s), and no temporary file is left.";

/// The bundled demo, compiled in so that an installed binary (`cargo install --path .`)
/// runs it from any folder: the model trained by tools/train_demo.py (136 KB) and its
/// 8 pictures (about 5 KB each).
const DEMO_MODEL: &[u8] = include_bytes!("../../examples/demo/model.safetensors");
const DEMO_PICTURES: &[(&str, &[u8])] = &[
    ("000_circle.png", include_bytes!("../../examples/demo/images/000_circle.png")),
    ("001_triangle.png", include_bytes!("../../examples/demo/images/001_triangle.png")),
    ("002_square.png", include_bytes!("../../examples/demo/images/002_square.png")),
    ("003_circle.png", include_bytes!("../../examples/demo/images/003_circle.png")),
    ("004_square.png", include_bytes!("../../examples/demo/images/004_square.png")),
    ("005_circle.png", include_bytes!("../../examples/demo/images/005_circle.png")),
    ("006_triangle.png", include_bytes!("../../examples/demo/images/006_triangle.png")),
    ("007_circle.png", include_bytes!("../../examples/demo/images/007_circle.png")),
];

/// Writes the bundled model and pictures into a folder of the temp directory (once per
/// version; rewritten when different) and returns it: `map` reads files.
fn unpack_demo() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("glimpse-demo-{}", env!("CARGO_PKG_VERSION")));
    let files = std::iter::once(("model.safetensors".to_string(), DEMO_MODEL))
        .chain(DEMO_PICTURES.iter().map(|(name, bytes)| (format!("images/{name}"), *bytes)));
    for (name, bytes) in files {
        let path = dir.join(name);
        if std::fs::read(&path).is_ok_and(|old| old == bytes) {
            continue;
        }
        let folder = path.parent().expect("a file in a folder");
        std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
        glimpse::tensorfile::write_atomically(&path, bytes)?;
    }
    Ok(dir)
}

/// Arguments of `glimpse demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Output folder for the maps and index.html.
    #[arg(short = 'o', long = "out", value_name = "OUTDIR", default_value = "glimpse-demo")]
    out: PathBuf,
    /// Run on the GPU or the CPU references.
    #[arg(long, value_enum, default_value = "gpu")]
    device: MapDevice,
}

/// Runs `glimpse map` with the bundled demo model over the bundled pictures (verbose unless quiet).
pub fn demo(a: DemoArgs, out: super::Output) -> Result<()> {
    let dir = unpack_demo()?;
    let model = dir.join("model.safetensors");
    println!("demo: an attention CNN (CBAM, selective-kernel and Non-local blocks) that finds the odd shape out");
    println!("model {}, pictures {}", model.display(), dir.join("images").display());
    map(
        MapArgs {
            model: Some(model),
            arch: None,
            weights: None,
            args: Vec::new(),
            img_size: None,
            inputs: vec![dir.join("images")],
            out: a.out.clone(),
            layers: Vec::new(),
            queries: Vec::new(),
            colormap: Colormap::Turbo,
            alpha: 0.5,
            normalize: Normalize::Image,
            batch: 8,
            device: a.device,
        },
        super::Output { verbose: !out.quiet, ..out },
    )?;
    println!(
        "open {} in a browser: per picture, the predicted shape, where each CBAM block looked (spatial maps), \
         which channels and kernel sizes it weighted, and where the Non-local block's query pixels attend",
        a.out.join("index.html").display()
    );
    Ok(())
}

/// How many GPU pipelines the run compiled and what they cost, the slowest named
/// (lazy drivers such as llvmpipe compile on a pipeline's first dispatch).
fn compile_summary(compiles: &[glimpse::gpu::PipelineCompile]) -> Option<String> {
    if compiles.is_empty() {
        return None;
    }
    let create: f64 = compiles.iter().map(|c| c.create_ms).fold(0.0, |a, b| a + b) / 1e3;
    let first: f64 = compiles.iter().filter_map(|c| c.first_run_ms).fold(0.0, |a, b| a + b) / 1e3;
    let mut slowest: Vec<_> = compiles.iter().collect();
    slowest.sort_by(|a, b| b.total_ms().total_cmp(&a.total_ms()));
    let named: Vec<String> =
        slowest.iter().take(5).map(|c| format!("{} {:.2} s", c.label(), c.total_ms() / 1e3)).collect();
    Some(format!(
        "GPU kernels: {} pipelines, {create:.3} s creating them (summed over the threads compiling at once), {first:.3} s in their first dispatches (compiling on lazy drivers); slowest: {}",
        compiles.len(),
        named.join(", ")
    ))
}

/// How long the first batch on the GPU may take before [`note_a_slow_first_batch`] says why.
const FIRST_BATCH_NOTE_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

/// Says, once the first batch has taken [`FIRST_BATCH_NOTE_AFTER`], that a first run
/// compiles the GPU kernels (a minute or more on CPU drivers, which compile each
/// kernel on its first dispatch), so that the command does not sit silent. Dropping
/// the returned sender (the first image is done, or the command ended) cancels it.
fn note_a_slow_first_batch(bar: ProgressBar) -> std::sync::mpsc::Sender<()> {
    let (done, waiting) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = waiting.recv_timeout(FIRST_BATCH_NOTE_AFTER) {
            bar.suspend(|| {
                eprintln!(
                    "the first batch is still running: a first run on this machine compiles the GPU kernels \
                     in the driver (later runs reuse its shader cache)"
                )
            });
        }
    });
    done
}
