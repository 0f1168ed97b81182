//! Untrusted .safetensors files: every malformed file is an error that says
//! what is wrong, never a panic (RELIABILITY.md's list of files to craft).

use glimpse::tensorfile::TensorFile;
use glimpse::weights::Weights;
use glimpse::Tensor;
use std::collections::BTreeMap;

/// A file from a raw JSON header and data section.
fn craft(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn parse_err(bytes: &[u8]) -> String {
    TensorFile::parse(bytes).expect_err("the file should be rejected")
}

#[test]
fn a_well_formed_file_round_trips_with_metadata() {
    let dir = std::env::temp_dir().join(format!("glimpse-tf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.safetensors");
    let t = Tensor::from_vec(&[2, 3], vec![1.0, -2.0, 3.5, 0.0, 1e-3, 7.0]).unwrap();
    let meta = BTreeMap::from([("arch".to_string(), "SKConv".to_string())]);
    TensorFile::write(&path, &[("x", &t)], &meta).unwrap();
    let back = TensorFile::read(&path).unwrap();
    assert_eq!(back.get("x").unwrap(), &t);
    assert_eq!(back.metadata, meta);
    assert!(back.get("y").unwrap_err().to_string().contains("holds: x"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn half_precision_and_integer_counters_are_handled() {
    let h: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
    let b: Vec<u8> = [0.25f32].iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect();
    let mut data = h.clone();
    data.extend(&b);
    data.extend(7i64.to_le_bytes());
    let header = r#"{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]},"bn.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[6,14]}}"#;
    let file = TensorFile::parse(&craft(header, &data)).unwrap();
    assert_eq!(file.get("h").unwrap().data(), &[1.5, -2.0]);
    assert_eq!(file.get("b").unwrap().data(), &[0.25]);
    assert_eq!(file.skipped, BTreeMap::from([("bn.num_batches_tracked".to_string(), "I64".to_string())]));
}

#[test]
fn malformed_containers_are_rejected() {
    let good_data = f32_bytes(&[1.0, 2.0]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty file", vec![]),
        ("truncated header length", vec![8, 0, 0]),
        ("header length past the end", craft("{}", &[]).into_iter().take(8).chain(b"{".iter().copied()).collect()),
        ("huge header length", u64::MAX.to_le_bytes().to_vec()),
        ("header not JSON", craft("not json", &[])),
        ("data shorter than declared", craft(r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, &good_data)),
        (
            "overlapping offsets",
            craft(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                &good_data,
            ),
        ),
        ("a hole before the data", craft(r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, &good_data)),
        ("trailing bytes", craft(r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, &good_data)),
        (
            "shape overflow",
            craft(r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#, &good_data),
        ),
        (
            "shape disagrees with the bytes",
            craft(r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, &good_data),
        ),
    ];
    for (what, bytes) in cases {
        let err = parse_err(&bytes);
        assert!(!err.is_empty(), "{what}");
    }
}

#[test]
fn bad_tensors_are_rejected_by_name() {
    let nan = craft(r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, &f32_bytes(&[1.0, f32::NAN]));
    assert!(parse_err(&nan).contains("'w'") && parse_err(&nan).contains("non-finite"), "{}", parse_err(&nan));
    let inf = craft(r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, &f32_bytes(&[f32::INFINITY]));
    assert!(parse_err(&inf).contains("non-finite"));
    let zero = craft(r#"{"w":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}}"#, &[]);
    assert!(parse_err(&zero).contains("zero-sized"), "{}", parse_err(&zero));
    let fp8 = craft(r#"{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#, &[0, 0]);
    assert!(parse_err(&fp8).contains("not supported"), "{}", parse_err(&fp8));
}

#[test]
fn unreadable_paths_name_the_file() {
    let err = TensorFile::read(std::path::Path::new("/nonexistent/w.safetensors")).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/w.safetensors"), "{err}");
}

#[test]
fn duplicate_names_are_an_error_not_a_panic() {
    let dir = std::env::temp_dir().join(format!("glimpse-tensorfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dup.safetensors");
    let t = Tensor::new(glimpse::Shape::new(&[2]).unwrap(), vec![1.0, 2.0]).unwrap();
    let err = TensorFile::write(&path, &[("a", &t), ("b", &t), ("a", &t)], &BTreeMap::new()).unwrap_err();
    let err = err.to_string();
    assert!(err.contains("dup.safetensors") && err.contains("two tensors are named 'a'"), "{err}");
    assert!(!path.exists(), "nothing written");
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 11, defect 10: an integer tensor where a float one is needed is named
/// with its dtype (it used to be reported as missing).
#[test]
fn an_integer_weight_is_named_with_its_dtype_not_called_missing() {
    let header = r#"{"fc.weight":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#;
    let file = TensorFile::parse(&craft(header, &7i64.to_le_bytes())).unwrap();
    let err = file.get("fc.weight").unwrap_err().to_string();
    assert!(err.contains("'fc.weight' is I64") && err.contains("F32, F16, BF16 or F64"), "{err}");
    let mut weights = Weights::new(file, "w.safetensors");
    let err = weights.expect("fc.weight", &[1]).unwrap_err().to_string();
    assert!(err.contains("'fc.weight' is I64") && !err.contains("missing"), "{err}");
}

/// Issue 11, defect 10: a tensor listed twice in the JSON header is named
/// (serde kept the last one silently).
#[test]
fn a_tensor_listed_twice_in_the_header_is_named() {
    let header = r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let err = parse_err(&craft(header, &f32_bytes(&[1.0])));
    assert!(err.contains("'w' more than once"), "{err}");
}

/// Issue 11, defect 10: truncated data says so with the byte counts (it said
/// "incomplete metadata").
#[test]
fn truncated_data_is_called_truncated_with_the_bytes_expected_and_found() {
    let header = r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
    let err = parse_err(&craft(header, &f32_bytes(&[1.0, 2.0])));
    assert!(err.contains("truncated") && err.contains("need 16 bytes") && err.contains("holds 8"), "{err}");
    let whole = craft(header, &f32_bytes(&[1.0, 2.0, 3.0, 4.0]));
    let err = parse_err(&whole[..20]);
    assert!(err.contains("truncated") && err.contains("header"), "{err}");
}
