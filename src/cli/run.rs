//! `glimpse run`: one block, PyTorch weights in, output (and maps) out.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use glimpse::blocks::{self, BuildOptions, ARCHS};
use glimpse::gpu::Gpu;
use glimpse::graph::{Fusion, Plan, Rule, Tensors};
use glimpse::tensorfile::{TensorFile, FLOAT_DTYPES};
use glimpse::weights::Weights;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// Where to run.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Device {
    /// The GPU plan (adapter from WGPU_BACKEND / WGPU_ADAPTER_NAME, or the best).
    Gpu,
    /// The CPU reference executor.
    Cpu,
}

/// Arguments of `glimpse run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Architecture (see the list below).
    #[arg(long)]
    arch: String,
    /// PyTorch state_dict as .safetensors (omit for blocks without weights).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Input .safetensors holding the N x C x H x W tensor `x` (or a single tensor).
    #[arg(long)]
    input: PathBuf,
    /// Output .safetensors: receives `y` and, with --maps, the attention maps.
    #[arg(long)]
    output: PathBuf,
    /// Run the block found under this state_dict prefix of a whole model's weights
    /// (e.g. layer1.0.se. with --arch timm.CbamModule); tensors elsewhere are ignored.
    #[arg(long)]
    prefix: Option<String>,
    /// A constructor argument with PyTorch's name, e.g. ratio=8, stride=2, attn_layer=cbam.
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    args: Vec<String>,
    /// Run on the GPU or on the CPU reference executor.
    #[arg(long, value_enum, default_value = "gpu")]
    device: Device,
    /// Skip the fusion pass (single ops only), or with RULE,... turn just those rules off.
    #[arg(long, value_name = "RULE,...", num_args = 0..=1, value_delimiter = ',', conflicts_with = "fuse")]
    no_fuse: Option<Vec<String>>,
    /// Apply only these fusion rules (see the list below).
    #[arg(long, value_name = "RULE,...", value_delimiter = ',')]
    fuse: Option<Vec<String>>,
    /// Print, per fusion rule, where it fired and where it was refused and why.
    #[arg(long)]
    explain: bool,
    /// Also write the attention maps.
    #[arg(long)]
    maps: bool,
    /// A query pixel X,Y whose Non-local attention row is written as a map (repeatable).
    #[arg(long = "query", value_name = "X,Y")]
    queries: Vec<String>,
}

/// The architecture list and the fusion rules for `--help`.
pub fn arch_help() -> String {
    let mut s = String::from("Architectures:\n");
    for (i, a) in ARCHS.iter().enumerate() {
        let params: Vec<String> = a.params.iter().map(|p| format!("{}={}", p.name, p.default)).collect();
        // The networks share one long list: print it once, at the first of them.
        let first_with_these = ARCHS[..i].iter().find(|b| std::ptr::eq(b.params, a.params) && a.params.len() > 4);
        let params = match first_with_these {
            Some(first) => format!("as {}", first.name),
            None if params.is_empty() => "none".to_string(),
            None => params.join("; "),
        };
        s += &format!("  {:<22} {}\n  {:<22} args: {params}", a.name, a.about, "");
        if !a.maps.is_empty() {
            let maps: Vec<&str> = a.maps.iter().map(|m| m.name).collect();
            s += &format!("; maps: {}", maps.join(", "));
        }
        s += "\n";
    }
    s += "\nFusion rules, applied in this order to the graph of single ops the blocks build (--no-fuse skips \
          them all, --no-fuse RULE,... some, --fuse RULE,... keeps only those; --explain says where each \
          fired or why not):\n";
    for rule in Rule::ALL {
        s += &format!("  {:<22} {}\n", rule.name(), rule.describe());
    }
    s
}

/// The rules `--fuse` / `--no-fuse` select: all by default, none for a bare
/// `--no-fuse`, or the named ones kept or dropped.
pub fn fusion(no_fuse: &Option<Vec<String>>, fuse: &Option<Vec<String>>) -> Result<Fusion> {
    let parse = |names: &[String]| names.iter().map(|n| Rule::parse(n)).collect::<glimpse::Result<Vec<Rule>>>();
    Ok(match (no_fuse, fuse) {
        (Some(names), _) if names.is_empty() => Fusion::none(),
        (Some(names), _) => Fusion::without(&parse(names)?),
        (None, Some(names)) => Fusion::only(&parse(names)?),
        (None, None) => Fusion::all(),
    })
}

/// Runs the block and writes the output file.
pub fn run(a: RunArgs, out: super::Output) -> Result<()> {
    // Before any work: the output must not replace an input, a folder or a device, and its
    // folder must be writable, or the run would fail only at its end.
    let read: Vec<PathBuf> = a.weights.iter().chain([&a.input]).cloned().collect();
    glimpse::output::check_outputs(&[("--output", &a.output)], &read)?;
    let input = TensorFile::read(&a.input)?;
    if let Some(why) = input.integer_note("x") {
        bail!("{}: {why}", a.input.display());
    }
    let x = match input.tensors.get("x") {
        Some(x) => x.clone(),
        None if input.tensors.len() == 1 => input.tensors.values().next().expect("one tensor").clone(),
        None => {
            let integers: Vec<String> =
                input.skipped.iter().map(|(name, dtype)| format!("'{name}' ({dtype})")).collect();
            let note = match integers.is_empty() {
                true => String::new(),
                false => {
                    format!("; integer tensors are not read: {} (glimpse needs {FLOAT_DTYPES})", integers.join(", "))
                }
            };
            bail!(
                "{}: expected a tensor named 'x' or a single tensor, found {} float tensor(s){note}",
                a.input.display(),
                input.tensors.len()
            )
        }
    };
    let weights = match &a.weights {
        Some(p) => Weights::load(p)?,
        None => Weights::empty(),
    };
    let queries = a.queries.iter().map(|q| super::parse_query(q)).collect::<Result<Vec<_>>>()?;
    let options = BuildOptions { fusion: fusion(&a.no_fuse, &a.fuse)?, maps: a.maps, queries };
    let prefix = a.prefix.as_deref().unwrap_or("");
    let (graph, report) = blocks::build_reported(&a.arch, prefix, x.shape(), weights, &a.args, options)?;
    if a.explain {
        print!("fusion of {} ({} nodes after the pass):\n{report}", a.arch, graph.node_count());
    }
    let feed = Tensors::from([("x".to_string(), x)]);
    let start = Instant::now();
    let outputs = match a.device {
        Device::Cpu => graph.run_cpu(&feed)?,
        Device::Gpu => {
            let gpu = Gpu::new()?;
            if let Some(advice) = gpu.adapter().advice() {
                out.note(format_args!("note: {advice}"));
            }
            let plan = Plan::compile(&gpu, &graph)?;
            out.note(format_args!(
                "{} on {}: {} dispatches, {:.1} MiB activations, {:.1} MiB weights, {:.1} MiB kernel scratch",
                a.arch,
                gpu.adapter(),
                plan.dispatch_count(),
                plan.activation_bytes() as f64 / 1048576.0,
                plan.weight_bytes() as f64 / 1048576.0,
                plan.scratch_bytes() as f64 / 1048576.0
            ));
            plan.run(&gpu, &feed)?
        }
    };
    // Nothing non-finite is written: the output file is left untouched.
    glimpse::graph::check_finite(&outputs).with_context(|| format!("{} on {:?}", a.arch, a.device))?;
    let elapsed = start.elapsed();
    let named: Vec<(&str, &glimpse::Tensor)> = outputs.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let meta = BTreeMap::from([("arch".to_string(), a.arch.clone()), ("args".to_string(), a.args.join(" "))]);
    TensorFile::write(&a.output, &named, &meta)?;
    for (name, t) in &outputs {
        println!("{name}: {}", t.shape());
    }
    println!("wrote {} ({:.1} ms including plan compilation)", a.output.display(), elapsed.as_secs_f64() * 1e3);
    Ok(())
}
