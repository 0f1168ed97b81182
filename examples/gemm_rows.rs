//! 1 x 1 conv rows (the GEMM form for stride 1, conv2d for other strides), each checked against the
//! CPU reference at batch 1 (any batch with CHECK=1), then timed per dispatch with GPU timestamps,
//! interleaved with the 512^3 GEMM: the fastest of REPS (default 7) runs of each, the row's share of
//! the GEMM, and the same share in process CPU time (less moved by other load on a shared machine).
//! Where a row's time goes (repack_pixels against matmul_subgroup) is what `glimpse bench` cannot
//! show. A row is "N,C,HW,Cout,stride,epilogue": an HW x HW map (or "pP": P pixels, stride 1), the
//! epilogue n (none), a (affine), ar (affine + relu) or arr (affine + residual + relu); a seventh
//! field "kK" (K odd) makes it a K x K conv with padding K / 2: "k3" (Winograd's transforms and
//! GEMMs where chosen), "k7" with stride 2 and 3 channels the stem (`8,3,224,64,2,ar,k7`); an
//! eighth "dD" gives it dilation D and padding D x (K / 2) (`1,128,14,512,2,ar,k3,d2`).
//! `cargo run --release --example gemm_rows -- 8,64,56,256,1,arr 1,64,56,128,2,arr`
//! (`LP_NUM_THREADS=1` on lavapipe: one worker thread, steadier under load).
//! On a CPU adapter (lavapipe) these times measure the driver on this CPU, not GPU speed.

use anyhow::{bail, Result};
use glimpse::check::{compare, OP_TOLERANCE};
use glimpse::gpu::{Gpu, GpuTensor};
use glimpse::ops::conv2d::Conv2d;
use glimpse::ops::matmul::Matmul;
use glimpse::ops::{Activation, Epilogue, Op};
use glimpse::{Shape, Tensor};

/// Process CPU seconds (every thread: lavapipe's workers too); NaN where not measured.
#[cfg(unix)]
fn cpu() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

#[cfg(not(unix))]
fn cpu() -> f64 {
    f64::NAN
}

fn main() -> Result<()> {
    let gpu = Gpu::new()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        bail!("give rows N,C,HW,Cout,stride,epilogue (see the example's doc comment)");
    }
    let reps: usize = std::env::var("REPS").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    let mut rng = fastrand::Rng::with_seed(1);
    // The GEMM.
    let s = Shape::new(&[1, 512, 512])?;
    let ga = gpu.upload(&Tensor::random(s.clone(), &mut rng, -1.0, 1.0))?;
    let gb = gpu.upload(&Tensor::random(s.clone(), &mut rng, -1.0, 1.0))?;
    let gout = gpu.empty(&s)?;
    let gemm = Matmul::new(false, false).encode(&gpu, &[&ga, &gb], &gout)?;
    for spec in &args {
        let v: Vec<&str> = spec.split(',').collect();
        let usage = "want N,C,HW,Cout,stride,epilogue[,kK with K odd[,dD]] (e.g. 8,64,56,256,1,arr)";
        let taps = match v.get(6).map(|f| f.strip_prefix('k').map(str::parse::<usize>)) {
            None if v.len() == 6 => 1,
            Some(Some(Ok(k))) if v.len() <= 8 && k % 2 == 1 => k,
            _ => bail!("row {spec}: {usage}"),
        };
        let dilation = match v.get(7).map(|f| f.strip_prefix('d').map(str::parse::<usize>)) {
            None => 1,
            Some(Some(Ok(d))) if d > 0 => d,
            _ => bail!("row {spec}: {usage}"),
        };
        let p = |i: usize| -> Result<usize> {
            match v[i].parse::<usize>() {
                Ok(x) if x > 0 => Ok(x),
                _ => bail!("row {spec}: field {} ({}) is not a positive number", i + 1, v[i]),
            }
        };
        let (n, c, co, stride) = (p(0)?, p(1)?, p(3)?, p(4)?);
        // "pP": P pixels in one row (stride 1 only), else an HW x HW map.
        let (hw, pixels) = match v[2].strip_prefix('p') {
            Some(px) => (0, px.parse::<usize>()?),
            None => (p(2)?, p(2)? * p(2)?),
        };
        if hw == 0 && stride != 1 {
            bail!("row {spec}: a pP row (pixels in one row) takes stride 1 only");
        }
        let epilogue = match v[5] {
            "n" => Epilogue::NONE,
            "a" => Epilogue { affine: true, activation: Activation::None, residual: false },
            "ar" => Epilogue { affine: true, activation: Activation::Relu, residual: false },
            "arr" => Epilogue { affine: true, activation: Activation::Relu, residual: true },
            e => bail!("row {spec}: epilogue {e} is none of n, a, ar, arr"),
        };
        let ohw = (hw - 1) / stride + 1;
        let gemm_form = stride == 1 && taps == 1;
        let mut inputs = Vec::new();
        let op: Box<dyn Op> = if gemm_form {
            inputs.push(Tensor::random(Shape::new(&[1, co, c])?, &mut rng, -0.1, 0.1));
            inputs.push(Tensor::random(Shape::new(&[n, c, pixels])?, &mut rng, -1.0, 1.0));
            Box::new(Matmul::conv1x1(epilogue))
        } else {
            inputs.push(Tensor::random(Shape::new(&[n, c, hw, hw])?, &mut rng, -1.0, 1.0));
            inputs.push(Tensor::random(Shape::new(&[co, c, taps, taps])?, &mut rng, -0.1, 0.1));
            let pad = dilation * (taps / 2);
            Box::new(
                Conv2d::new().stride([stride, stride]).epilogue(epilogue).padding([pad, pad]).dilation([dilation; 2]),
            )
        };
        if epilogue.affine {
            inputs.push(Tensor::random(Shape::new(&[2, co])?, &mut rng, 0.5, 1.5));
        }
        let out_shape = if gemm_form { Shape::new(&[n, co, pixels])? } else { Shape::new(&[n, co, ohw, ohw])? };
        if epilogue.residual {
            inputs.push(Tensor::random(out_shape.clone(), &mut rng, -1.0, 1.0));
        }
        let up: Vec<GpuTensor> = inputs.iter().map(|t| gpu.upload(t)).collect::<glimpse::Result<_>>()?;
        let refs: Vec<&GpuTensor> = up.iter().collect();
        let out = gpu.empty(&out_shape)?;
        // Correct first (the CPU reference is f64; batches past 1 only with CHECK set: slow).
        let d = op.encode(&gpu, &refs, &out)?;
        gpu.fill(&out, f32::NAN)?;
        gpu.submit(&d)?;
        if n == 1 || std::env::var("CHECK").is_ok() {
            let want = op.reference(&inputs.iter().collect::<Vec<_>>())?;
            let cmp = compare(&gpu.read(&out)?, &want, OP_TOLERANCE);
            if !cmp.passed {
                bail!("{spec}: differs from the CPU reference: {cmp:?}");
            }
        }
        let flops = op.cost(&refs.iter().map(|t| t.shape()).collect::<Vec<_>>()).flops as f64;
        let mut best = vec![f64::MAX; d.len()];
        let mut best_gemm = f64::MAX;
        let mut cpu_gemm = f64::MAX;
        let mut cpu_row = f64::MAX;
        for _ in 0..reps {
            let c0 = cpu();
            best_gemm = best_gemm.min(gpu.submit_timed(&gemm)?[0]);
            cpu_gemm = cpu_gemm.min(cpu() - c0);
            let c0 = cpu();
            let times = gpu.submit_timed(&d)?;
            cpu_row = cpu_row.min(cpu() - c0);
            for (b, t) in best.iter_mut().zip(times) {
                *b = b.min(t);
            }
        }
        let gemm_gf = 2.0 * 512f64.powi(3) / best_gemm;
        let cpu_gemm_gf = 2.0 * 512f64.powi(3) / cpu_gemm;
        let total: f64 = best.iter().sum();
        let gf = flops / total;
        let parts: Vec<String> = best.iter().map(|t| format!("{:.3}", t * 1e-6)).collect();
        println!(
            "{spec:<20} {:>8.3} ms [{}] {gf:6.2} GF/s  gemm {gemm_gf:6.2}  {:4.0}%  cpu {:7.3} ms {:4.0}% of gemm cpu",
            total * 1e-6,
            parts.join(" + "),
            100.0 * gf / gemm_gf,
            cpu_row * 1e3,
            100.0 * (flops / cpu_row) / cpu_gemm_gf
        );
    }
    Ok(())
}
