//! Dispatch counts of every benchmarked block (1 x 256 x 56 x 56) and network
//! (1 x 3 x 224 x 224) with random weights: fused and unfused, maps off and on.
//! Compiles plans only (nothing runs), so it is quick on any adapter.
//!
//! `cargo run --example dispatch_counts`

use anyhow::Result;
use glimpse::bench::random_weights;
use glimpse::blocks::{self, BuildOptions, ARCHS};
use glimpse::gpu::Gpu;
use glimpse::graph::{Fusion, Plan};
use glimpse::weights::Weights;
use glimpse::Shape;

fn main() -> Result<()> {
    let gpu = Gpu::new()?;
    println!("adapter: {}", gpu.adapter());
    println!(
        "{:<28} {:>14} {:>6} {:>8} {:>10} {:>12}",
        "arch", "input", "fused", "unfused", "fused+maps", "unfused+maps"
    );
    let mut rows = Vec::new();
    for arch in ARCHS.iter().filter(|a| a.pretrained.is_none() && a.random_weights.is_some()) {
        rows.push((arch.name, arch.name, vec![], Shape::new(&[1, 256, 56, 56])?));
    }
    for (row, arch, args) in [
        ("timm.skresnet18", "timm.skresnet18", vec![]),
        ("timm.skresnext50_32x4d", "timm.skresnext50_32x4d", vec![]),
        ("timm.resnet50_cbam", "timm.resnet50", vec!["attn_layer=cbam".to_string()]),
        ("timm.resnet50_nl", "timm.resnet50", vec!["attn_layer=nl".to_string()]),
    ] {
        rows.push((row, arch, args, Shape::new(&[1, 3, 224, 224])?));
    }
    for (row, arch, args, shape) in rows {
        let mut rng = fastrand::Rng::with_seed(1);
        let file = if shape.dims()[1] == 3 {
            (blocks::arch(arch)?.random_weights.expect("networks make random weights"))(&args, &mut rng)?
        } else {
            random_weights(arch, shape.dims()[1], &mut rng)?
        };
        let mut counts = Vec::new();
        for maps in [false, true] {
            for fusion in [Fusion::all(), Fusion::none()] {
                let options = BuildOptions { fusion, maps, queries: vec![] };
                let graph = blocks::build(arch, &shape, Weights::new(file.clone(), "random"), &args, options)?;
                counts.push(Plan::compile(&gpu, &graph)?.dispatch_count());
            }
        }
        let input = shape.dims().iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
        println!("{row:<28} {input:>14} {:>6} {:>8} {:>10} {:>12}", counts[0], counts[1], counts[2], counts[3]);
    }
    Ok(())
}
