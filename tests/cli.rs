//! The `glimpse` binary as a user runs it: output files, exit codes, and a
//! clear one-line error (never a panic) for each bad input.

mod common;

use glimpse::tensorfile::TensorFile;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn glimpse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glimpse"))
        .args(args)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .expect("glimpse runs")
}

/// `glimpse args` with `set` added to and `remove` taken from the environment.
fn glimpse_env(args: &[&str], set: &[(&str, &str)], remove: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_glimpse"));
    command.args(args).env("XDG_RUNTIME_DIR", "/tmp");
    for (k, v) in set {
        command.env(k, v);
    }
    for k in remove {
        command.env_remove(k);
    }
    command.output().expect("glimpse runs")
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name).display().to_string()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("glimpse-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fails the test unless the run failed with an `error:` line containing `want`.
fn assert_fails_with(o: &Output, want: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "should fail: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert!(err.contains("error:") && err.contains(want), "stderr should mention '{want}': {err}");
}

#[test]
fn run_writes_the_output_and_maps() {
    let out = scratch("cbam.safetensors");
    let o = glimpse(&[
        "run",
        "--arch",
        "timm.CbamModule",
        "--weights",
        &fixture("timm.CbamModule.weights.safetensors"),
        "--input",
        &fixture("timm.CbamModule.io.safetensors"),
        "--output",
        out.to_str().unwrap(),
        "--maps",
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let file = TensorFile::read(&out).unwrap();
    let want = TensorFile::read(Path::new(&fixture("timm.CbamModule.io.safetensors"))).unwrap();
    for (name, key) in [("y", "y"), ("channel", "map.channel"), ("spatial", "map.spatial")] {
        assert_eq!(file.get(name).unwrap().shape(), want.get(key).unwrap().shape(), "{name}");
    }
    assert_eq!(file.metadata.get("arch").map(String::as_str), Some("timm.CbamModule"));
}

#[test]
fn run_on_the_gpu_matches_the_cpu() {
    if common::gpu().is_none() {
        return;
    }
    let (gpu_out, cpu_out) = (scratch("sk-gpu.safetensors"), scratch("sk-cpu.safetensors"));
    for (device, out) in [("gpu", &gpu_out), ("cpu", &cpu_out)] {
        let o = glimpse(&[
            "run",
            "--arch",
            "SKConv",
            "--arg",
            "stride=2",
            "--weights",
            &fixture("SKConv_M2_G4_s2.weights.safetensors"),
            "--input",
            &fixture("SKConv_M2_G4_s2.io.safetensors"),
            "--output",
            out.to_str().unwrap(),
            "--device",
            device,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let (g, c) = (TensorFile::read(&gpu_out).unwrap(), TensorFile::read(&cpu_out).unwrap());
    let cmp = glimpse::check::compare(g.get("y").unwrap(), c.get("y").unwrap(), glimpse::check::OP_TOLERANCE);
    assert!(cmp.rel_l2 < glimpse::check::BLOCK_REL_L2, "{cmp:?}");
}

#[test]
fn bad_invocations_fail_with_a_clear_message() {
    let out = scratch("never.safetensors");
    let out = out.to_str().unwrap();
    let input = fixture("BasicBlock_s1.io.safetensors");
    let weights = fixture("BasicBlock_s1.weights.safetensors");
    // `glimpse run --arch BasicBlock --input IN` plus `extra`, writing to `out` unless extra names --output.
    let block = |extra: &[&str]| {
        let mut args = vec!["run", "--arch", "BasicBlock", "--input", &input];
        if !extra.contains(&"--output") {
            args.extend(["--output", out]);
        }
        args.extend(extra);
        glimpse(&args)
    };
    assert_fails_with(
        &glimpse(&["run", "--arch", "Nope", "--input", &input, "--output", out]),
        "unknown architecture 'Nope'",
    );
    assert_fails_with(
        &glimpse(&["run", "--arch", "BasicBlock", "--input", "/no/such/in.safetensors", "--output", out]),
        "/no/such/in.safetensors",
    );
    assert_fails_with(&block(&[]), "missing tensor 'conv1.weight'");
    assert_fails_with(&block(&["--weights", &weights, "--arg", "stride"]), "KEY=VALUE");
    // A weights file that is not safetensors at all.
    assert_fails_with(&block(&["--weights", &fixture("README.md")]), "not a valid safetensors file");
    assert_fails_with(
        &glimpse(&["run", "--arch", "NonLocal", "--input", &input, "--output", out, "--query", "3"]),
        "--query 3",
    );
    let unwritable = "/proc/glimpse-cannot-write-here.safetensors";
    assert_fails_with(&block(&["--weights", &weights, "--output", unwritable, "--device", "cpu"]), "cannot write");
    assert!(!Path::new(out).exists(), "no output file after a failed run");
    assert_fails_with(&glimpse(&["check", "--filter", "no-such-op"]), "no op matches");
    // An even kernel size is named as such (not as a wrong number of branches).
    let (sk_in, sk_w) =
        (fixture("timm.SelectiveKernel.io.safetensors"), fixture("timm.SelectiveKernel.weights.safetensors"));
    let sk = ["run", "--arch", "timm.SelectiveKernel", "--input", &sk_in, "--weights", &sk_w, "--output", out];
    for arg in ["kernel_size=4", "kernel_size=3,4"] {
        let o = glimpse(&[&sk[..], &["--device", "cpu", "--arg", arg]].concat());
        assert_fails_with(&o, "kernel_size 4 must be odd and at least 3");
    }
}

#[test]
fn help_lists_every_architecture() {
    let o = glimpse(&["run", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    for arch in glimpse::blocks::ARCHS {
        assert!(help.contains(arch.name), "run --help should list {}", arch.name);
    }
}

#[test]
fn run_gives_a_networks_logits_and_every_map_and_one_block_by_prefix() {
    let (out, x_file) = (scratch("skresnet18.safetensors"), scratch("x64.safetensors"));
    let net = |f: &str| fixture(&format!("networks/{f}"));
    let o = glimpse(&[
        "run",
        "--arch",
        "timm.skresnet18",
        "--weights",
        &net("timm.skresnet18.weights.safetensors"),
        "--input",
        &net("timm.skresnet18.io.safetensors"),
        "--output",
        out.to_str().unwrap(),
        "--maps",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = TensorFile::read(&out).unwrap();
    let want = TensorFile::read(Path::new(&net("timm.skresnet18.io.safetensors"))).unwrap();
    let rel = glimpse::check::compare(&got.tensors["y"], &want.tensors["y"], glimpse::check::OP_TOLERANCE).rel_l2;
    assert!(rel < glimpse::check::BLOCK_REL_L2, "logits relative L2 {rel}");
    assert_eq!(got.tensors.len(), 9, "y and 8 SK maps: {:?}", got.tensors.keys());
    assert!(got.tensors.contains_key("layer2.0.conv1.attn"), "{:?}", got.tensors.keys());

    // One CBAM block out of a whole ResNet's state_dict, by its prefix.
    let x = glimpse::Tensor::random(glimpse::Shape::new(&[1, 64, 12, 10]).unwrap(), &mut common::rng(), -1.0, 1.0);
    TensorFile::write(&x_file, &[("x", &x)], &Default::default()).unwrap();
    let weights = net("timm.resnet18_cbam.weights.safetensors");
    let args = |prefix: bool| {
        let mut a = vec!["run", "--arch", "timm.CbamModule", "--weights", &weights, "--maps"];
        a.extend(["--input", x_file.to_str().unwrap(), "--output", out.to_str().unwrap()]);
        if prefix {
            a.extend(["--prefix", "layer1.0.se."]);
        }
        a.iter().map(|s| s.to_string()).collect::<Vec<String>>()
    };
    let run = |a: Vec<String>| glimpse(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args(true));
    assert!(o.status.success(), "{}", stderr(&o));
    let got = TensorFile::read(&out).unwrap();
    assert!(got.tensors.contains_key("layer1.0.se.spatial") && got.tensors.contains_key("y"), "{got:?}");
    // Without --prefix the whole state_dict is not a CbamModule.
    assert_fails_with(&run(args(false)), "missing tensor 'channel.fc1.weight'");
    // A prefix holding nothing.
    let mut a = args(true);
    *a.last_mut().unwrap() = "layer9.".into();
    assert_fails_with(&run(a), "no tensor's name starts with 'layer9.'");
}

#[test]
fn map_draws_every_attention_map_of_a_timm_network() {
    let out = scratch("map-net");
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/images/000_circle.png");
    let weights = fixture("networks/timm.resnet18_cbam.weights.safetensors");
    let o = glimpse(&[
        "map",
        "--arch",
        "timm.resnet18",
        "--weights",
        &weights,
        "--arg",
        "attn_layer=cbam",
        "--img-size",
        "64",
        image.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = out.join("000_circle");
    for block in ["layer1.0", "layer2.1", "layer4.1"] {
        let spatial = dir.join(format!("{block}.se.spatial.png"));
        assert!(spatial.is_file(), "{} missing", spatial.display());
    }
    assert!(out.join("index.html").is_file());
    // A network without a pretrained size needs none here, but a bad argument is named.
    let o = glimpse(&[
        "map",
        "--arch",
        "timm.resnet18",
        "--weights",
        &weights,
        "--arg",
        "attn_layer=nl",
        image.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_fails_with(&o, "attn_layer=nl contradicts the weights");
}

#[test]
fn an_unmatched_adapter_name_or_unknown_backend_is_a_clear_error() {
    let o = glimpse_env(&["info"], &[("WGPU_ADAPTER_NAME", "no-such-adapter-xyz")], &[]);
    assert_fails_with(&o, "WGPU_ADAPTER_NAME='no-such-adapter-xyz'");
    // The message lists what exists, so the user can pick one.
    for adapter in glimpse::gpu::list_adapters().unwrap() {
        assert!(stderr(&o).contains(&adapter.name), "{adapter} not listed: {}", stderr(&o));
    }
    let o = glimpse_env(&["check", "--filter", "relu"], &[("WGPU_ADAPTER_NAME", "no-such-adapter-xyz")], &[]);
    assert_fails_with(&o, "no-such-adapter-xyz");

    let o = glimpse_env(&["info"], &[("WGPU_BACKEND", "vulkn")], &[]);
    assert_fails_with(&o, "WGPU_BACKEND");
    for name in ["'vulkn'", "vulkan", "gl", "metal", "dx12"] {
        assert!(stderr(&o).contains(name), "stderr should name {name}: {}", stderr(&o));
    }
}

#[test]
fn run_never_writes_over_an_input_a_device_or_a_folder() {
    let dir = scratch("run-outputs");
    std::fs::create_dir_all(&dir).unwrap();
    // Copies, so a regression cannot damage the fixtures.
    let (input, weights) = (dir.join("in.safetensors"), dir.join("w.safetensors"));
    std::fs::copy(fixture("BasicBlock_s1.io.safetensors"), &input).unwrap();
    std::fs::copy(fixture("BasicBlock_s1.weights.safetensors"), &weights).unwrap();
    let linked = dir.join("linked.safetensors");
    let _ = std::fs::remove_file(&linked);
    std::fs::hard_link(&weights, &linked).unwrap();
    let before = (std::fs::read(&input).unwrap(), std::fs::read(&weights).unwrap());
    let run = |output: &str| {
        let args = ["run", "--arch", "BasicBlock", "--weights", weights.to_str().unwrap(), "--input"];
        // WGPU_BACKEND=vulkn fails the run as soon as it opens the GPU: the output's error
        // showing instead proves the output is checked before the work.
        glimpse_env(
            &[&args[..], &[input.to_str().unwrap(), "--output", output]].concat(),
            &[("WGPU_BACKEND", "vulkn")],
            &[],
        )
    };
    let via_dots = dir.join("..").join("run-outputs").join("in.safetensors");
    for (output, want) in [
        (input.to_str().unwrap(), "is the input"),
        (via_dots.to_str().unwrap(), "is the input"),
        (weights.to_str().unwrap(), "is the input"),
        (linked.to_str().unwrap(), "is the input"),
        ("/dev/null", "not a regular file"),
        (dir.to_str().unwrap(), "not a regular file"),
        ("/no/such/folder/out.safetensors", "does not exist"),
    ] {
        let o = run(output);
        assert_fails_with(&o, want);
        assert!(stderr(&o).contains("--output") && !stderr(&o).contains("WGPU_BACKEND"), "{output}: {}", stderr(&o));
    }
    assert_eq!((std::fs::read(&input).unwrap(), std::fs::read(&weights).unwrap()), before, "inputs untouched");
    assert!(dir.is_dir(), "the folder is still a folder");
}

#[test]
fn gpu_commands_print_no_third_party_noise() {
    let o = glimpse_env(&["info"], &[], &["XDG_RUNTIME_DIR"]);
    assert!(!stderr(&o).contains("XDG_RUNTIME_DIR"), "{}", stderr(&o));
    if common::gpu().is_some() {
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

/// Finite inputs far outside the trained range overflow the GPU's f32 Non-local scores: the run
/// must fail naming the output, and write nothing, where the f64 CPU path stays finite.
#[test]
fn a_non_finite_result_is_an_error_and_writes_nothing() {
    let _gpu = gpu_or_skip!();
    let io = TensorFile::read(Path::new(&fixture("timm.NonLocalAttn.io.safetensors"))).unwrap();
    let x = io.tensors["x"].clone();
    let big = glimpse::Tensor::from_vec(x.shape().dims(), x.data().iter().map(|v| v * 1e20).collect()).unwrap();
    let (input, out) = (scratch("big-x.safetensors"), scratch("big-y.safetensors"));
    TensorFile::write(&input, &[("x", &big)], &Default::default()).unwrap();
    let weights = fixture("timm.NonLocalAttn.weights.safetensors");
    let run = |device: &str| {
        glimpse(&[
            "run",
            "--arch",
            "timm.NonLocalAttn",
            "--weights",
            &weights,
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
            "--device",
            device,
        ])
    };
    assert_fails_with(&run("gpu"), "output 'y' [2 x 32 x 7 x 9] has 4032 non-finite value(s)");
    assert!(!out.exists(), "nothing is written");
    let o = run("cpu");
    assert!(o.status.success(), "the f64 CPU path stays finite: {}", stderr(&o));
}

/// `-q` keeps results on stdout and errors on stderr, and drops the adapter and plan summary.
#[test]
fn quiet_run_prints_no_adapter_line_and_still_writes_the_output() {
    let gpu = gpu_or_skip!();
    let out = scratch("quiet-cbam.safetensors");
    let (weights, input) = (fixture("timm.CbamModule.weights.safetensors"), fixture("timm.CbamModule.io.safetensors"));
    let run = |flags: &[&str]| {
        let args = ["run", "--arch", "timm.CbamModule", "--weights", &weights, "--input", &input, "--output"];
        glimpse(&[flags, &args[..], &[out.to_str().unwrap(), "--device", "gpu"]].concat())
    };
    let loud = run(&[]);
    assert!(loud.status.success() && stderr(&loud).contains("dispatches"), "{}", stderr(&loud));
    let _ = std::fs::remove_file(&out);
    let quiet = run(&["-q"]);
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    assert!(!stderr(&quiet).contains(&gpu.adapter().to_string()), "{}", stderr(&quiet));
    assert_eq!(stderr(&quiet), "", "nothing but errors on stderr");
    assert!(String::from_utf8_lossy(&quiet.stdout).contains("wrote"), "results stay on stdout");
    assert!(TensorFile::read(&out).unwrap().get("y").is_ok(), "y is written");
}

#[test]
fn help_lists_the_global_quiet_and_verbose_flags() {
    for args in [&["--help"][..], &["classify", "--help"], &["map", "--help"]] {
        let help = String::from_utf8_lossy(&glimpse(args).stdout).into_owned();
        assert!(help.contains("-q, --quiet") && help.contains("-v, --verbose"), "{args:?}: {help}");
    }
    assert_fails_with(&glimpse(&["-q", "-v", "info"]), "cannot be used with");
}

#[test]
fn run_explains_the_fusion_rules_and_switches_them() {
    let net = |f: &str| fixture(&format!("networks/{f}"));
    let (weights, input) = (net("timm.resnet18_cbam.weights.safetensors"), net("timm.resnet18_cbam.io.safetensors"));
    let outputs: Vec<PathBuf> = (0..3).map(|i| scratch(&format!("explain{i}.safetensors"))).collect();
    let run = |out: &Path, extra: &[&str]| {
        let mut a = vec!["run", "--arch", "timm.resnet18", "--arg", "attn_layer=cbam", "--weights", &weights];
        a.extend(["--input", &input, "--maps", "--explain", "--output", out.to_str().unwrap()]);
        a.extend(extra);
        glimpse(&a)
    };
    let o = run(&outputs[0], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let explain = String::from_utf8_lossy(&o.stdout).into_owned();
    for want in [
        "cbam-spatial-gate    fired   8",
        "cbam-gate-pool       fired   8",
        "cbam-channel-mlp     fired   8",
        "fired at: layer1.0.se, layer1.1.se",
        "epilogue-affine",
    ] {
        assert!(explain.contains(want), "--explain should say '{want}':\n{explain}");
    }
    // One rule off: the gate + pool is refused where the gated x is still read twice.
    let o = run(&outputs[1], &["--no-fuse", "cbam-spatial-gate"]);
    let explain = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(explain.contains("cbam-spatial-gate    fired   0"), "{explain}");
    assert!(explain.contains("refused at layer1.0.se (gate): the channel-gated x has 2 readers"), "{explain}");
    // No fusion at all: the same logits and maps.
    let o = run(&outputs[2], &["--no-fuse"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let [fused, one_off, unfused] = [0, 1, 2].map(|i| TensorFile::read(&outputs[i]).unwrap());
    assert_eq!(fused.tensors.len(), 17, "y and 16 CBAM maps: {:?}", fused.tensors.keys());
    for (name, t) in &unfused.tensors {
        for other in [&fused, &one_off] {
            let c = glimpse::check::compare(&other.tensors[name], t, glimpse::check::OP_TOLERANCE);
            assert!(c.rel_l2 < glimpse::check::BLOCK_REL_L2, "{name}: {c:?}");
        }
    }
    assert_fails_with(
        &run(&outputs[0], &["--fuse", "cbam-gate-pool,bogus"]),
        "unknown rule 'bogus'; rules: cbam-channel-mlp",
    );
    let help = String::from_utf8_lossy(&glimpse(&["run", "--help"]).stdout).into_owned();
    for rule in glimpse::graph::Rule::ALL {
        assert!(help.contains(rule.name()), "run --help should list {}", rule.name());
    }
}

/// Issue 11, defect 10: an input file holding only an integer tensor names it
/// and its dtype (it said "found 0").
#[test]
fn an_integer_input_tensor_is_named_with_its_dtype() {
    let header = r#"{"x":{"dtype":"I64","shape":[1,1,1,1],"data_offsets":[0,8]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(3i64.to_le_bytes());
    let input = scratch("int-x.safetensors");
    std::fs::write(&input, bytes).unwrap();
    let out = scratch("int-x.out.safetensors");
    let args =
        ["run", "--arch", "timm.CbamModule", "--input", input.to_str().unwrap(), "--output", out.to_str().unwrap()];
    let o = glimpse(&[&args[..], &["--device", "cpu"]].concat());
    assert_fails_with(&o, "tensor 'x' is I64, an integer type; glimpse needs F32, F16, BF16 or F64");
    assert!(!out.exists());
}

/// Issue 11, first run: `glimpse demo` runs from any folder with the model and pictures
/// compiled into the binary (it used to read them from the checkout it was built in).
#[test]
fn demo_runs_from_any_folder_with_its_bundled_files() {
    let cwd = scratch("demo-cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_glimpse"))
        .args(["demo", "--device", "cpu", "-q"])
        .current_dir(&cwd)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}{stdout}", stderr(&o));
    let checkout = env!("CARGO_MANIFEST_DIR");
    let model_line = stdout.lines().find(|l| l.starts_with("model ")).expect("the model's path is printed");
    assert!(!model_line.contains(checkout), "the demo reads the checkout: {model_line}");
    let index = std::fs::read_to_string(cwd.join("glimpse-demo/index.html")).unwrap();
    assert_eq!(index.matches("<section class=\"picture\"").count(), 8, "eight bundled pictures");
}

/// Issue 11, first run: with no adapter, the error says that --device cpu works.
#[cfg(target_os = "linux")]
#[test]
fn no_adapter_says_that_device_cpu_works() {
    // Metal is not compiled in on Linux: no adapter can be found.
    let out = scratch("noadapter");
    let o = glimpse_env(&["demo", "-o", out.to_str().unwrap()], &[("WGPU_BACKEND", "metal")], &[]);
    assert_fails_with(&o, "work with --device cpu");
}
