//! RELIABILITY.md's failure classes that no other test file covers (docs/RELIABILITY-TESTS.md
//! lists every class with its tests): folder diamonds, zero-sized arguments, PyTorch pickles.

use glimpse::blocks::{self, BuildOptions};
use glimpse::tensorfile::TensorFile;
use glimpse::walk::{self, Depth};
use glimpse::weights::Weights;
use glimpse::Shape;
use std::path::PathBuf;

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("glimpse-reliability-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Folder walks: two links to one real folder (a diamond) give each picture once.
#[cfg(unix)]
#[test]
fn a_folder_reached_by_two_links_is_walked_once() {
    let dir = scratch("diamond");
    std::fs::create_dir_all(dir.join("real")).unwrap();
    std::fs::write(dir.join("real/a.png"), b"").unwrap();
    std::os::unix::fs::symlink(dir.join("real"), dir.join("left")).unwrap();
    std::os::unix::fs::symlink(dir.join("real"), dir.join("right")).unwrap();
    let found = walk::collect(std::slice::from_ref(&dir), Depth::Recursive, None).unwrap();
    assert_eq!(found.images.len(), 1, "{:?}", found.images);
    let _ = std::fs::remove_dir_all(dir);
}

/// CLI arguments: zero sizes, strides and kernels are named, never a panic or an empty tensor.
#[test]
fn zero_sized_arguments_are_named() {
    let shape = Shape::new(&[1, 3, 8, 8]).unwrap();
    for (arch, args, want) in [
        ("MaxPool2d", vec!["kernel_size=0"], "kernel size"),
        ("MaxPool2d", vec!["kernel_size=2", "stride=0"], "stride"),
        ("CenterCrop", vec!["size=0,4"], "size"),
        ("CenterCrop", vec!["size=0"], "size"),
    ] {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let weights = Weights::new(TensorFile::default(), "none");
        match blocks::build(arch, &shape, weights, &args, BuildOptions::default()) {
            Ok(_) => panic!("{arch} {args:?} should fail"),
            Err(e) => assert!(e.to_string().contains(want), "{arch} {args:?}: {e}"),
        }
    }
    // A zero-sized shape is refused where shapes are made.
    assert!(Shape::new(&[1, 0, 8, 8]).unwrap_err().to_string().contains("zero"));
}

/// Untrusted files: a PyTorch checkpoint (zip or pickle) is named as such and never unpickled.
#[test]
fn a_pytorch_checkpoint_is_named_not_unpickled() {
    let dir = scratch("pickle");
    let path = dir.join("model.pt");
    std::fs::write(&path, b"PK\x03\x04\x00\x00archive/data.pkl").unwrap();
    let err = TensorFile::read(&path).unwrap_err().to_string();
    assert!(err.contains("model.pt") && err.contains("PyTorch checkpoint"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
