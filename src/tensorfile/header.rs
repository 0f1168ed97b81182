//! Checks of a safetensors header made before the safetensors crate parses
//! it, for the failures whose message from the crate would not say what is
//! wrong: a truncated file ("incomplete metadata"), and a tensor named twice
//! in the JSON header (serde keeps the last silently).

use serde::de::{Deserializer, MapAccess, Visitor};
use std::collections::BTreeSet;
use std::fmt;

/// Bytes before the JSON header: its length as a little-endian u64.
const LENGTH_BYTES: usize = 8;
/// The safetensors crate's limit on the header (it names a longer one "header too large").
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Ok when the header names each tensor once and the file holds exactly the
/// bytes the header declares; otherwise what is wrong. Headers that are not
/// JSON or not a map are left to the safetensors crate, which names those.
pub(super) fn check(bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    // torch.save writes a zip archive (PyTorch >= 1.6) or a bare pickle: never unpickled here.
    // Their magic bytes are also a possible header length, so a JSON header after the length
    // (a '{' at byte 8) means safetensors after all.
    let magic =
        bytes.starts_with(b"PK\x03\x04") || (bytes[0] == 0x80 && (2..=5).contains(&bytes.get(1).copied().unwrap_or(0)));
    if magic && bytes.get(LENGTH_BYTES) != Some(&b'{') {
        return Err("a PyTorch checkpoint (torch.save's zip or pickle), not safetensors: glimpse never unpickles \
                    files; convert it with safetensors.torch.save_file(model.state_dict(), \"w.safetensors\")"
            .into());
    }
    let Some(length) = bytes.get(..LENGTH_BYTES) else {
        return Err(format!(
            "the file is truncated: {} byte(s), shorter than the {LENGTH_BYTES}-byte header length",
            bytes.len()
        ));
    };
    let declared = u64::from_le_bytes(length.try_into().expect("8 bytes"));
    let after_length = (bytes.len() - LENGTH_BYTES) as u64;
    if declared > after_length {
        // A length past the crate's 100 MB header limit is not a truncated file but not a
        // safetensors file at all: the crate says "header too large".
        if declared > MAX_HEADER_BYTES {
            return Ok(());
        }
        return Err(format!(
            "the file is truncated: the header length says {declared} bytes of header, the file holds \
             {after_length} after the length"
        ));
    }
    let header = &bytes[LENGTH_BYTES..LENGTH_BYTES + declared as usize];
    let Ok(text) = std::str::from_utf8(header) else { return Ok(()) };
    let mut de = serde_json::Deserializer::from_str(text);
    let Ok(scan) = de.deserialize_map(ScanVisitor) else { return Ok(()) };
    if let Some(name) = scan.duplicate {
        return Err(format!("the header lists tensor '{name}' more than once"));
    }
    let data = after_length - declared;
    if scan.data_end > data {
        return Err(format!(
            "the file is truncated: the header's tensors need {} bytes of data, the file holds {data}",
            scan.data_end
        ));
    }
    if scan.data_end < data {
        return Err(format!(
            "{} byte(s) more than the header's tensors use: the data section holds {data} bytes, the \
             tensors end at byte {}",
            data - scan.data_end,
            scan.data_end
        ));
    }
    Ok(())
}

/// What one pass over the header's top-level map found.
struct Scan {
    /// The first name seen twice.
    duplicate: Option<String>,
    /// The largest end offset of any tensor's data (0 without tensors).
    data_end: u64,
}

struct ScanVisitor;

impl<'de> Visitor<'de> for ScanVisitor {
    type Value = Scan;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of tensor names")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scan, A::Error> {
        let mut names = BTreeSet::new();
        let mut scan = Scan { duplicate: None, data_end: 0 };
        while let Some(name) = map.next_key::<String>()? {
            let value: serde_json::Value = map.next_value()?;
            if !names.insert(name.clone()) && scan.duplicate.is_none() {
                scan.duplicate = Some(name.clone());
            }
            if name == "__metadata__" {
                continue;
            }
            let end = value.get("data_offsets").and_then(|o| o.get(1)).and_then(serde_json::Value::as_u64);
            scan.data_end = scan.data_end.max(end.unwrap_or(0));
        }
        Ok(scan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: usize) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend(std::iter::repeat_n(0u8, data));
        bytes
    }

    #[test]
    fn exact_files_pass_and_wrong_lengths_are_measured() {
        let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}}"#;
        check(&file(header, 8)).unwrap();
        assert_eq!(
            check(&file(header, 5)).unwrap_err(),
            "the file is truncated: the header's tensors need 8 bytes of data, the file holds 5"
        );
        assert!(check(&file(header, 9)).unwrap_err().starts_with("1 byte(s) more than"));
        assert!(check(&file(header, 0)[..20]).unwrap_err().contains("header length says"));
        assert!(check(&[1, 2]).unwrap_err().contains("2 byte(s), shorter"));
    }

    #[test]
    fn pytorch_checkpoints_are_named_and_never_unpickled() {
        for bytes in [&b"PK\x03\x04archive/data.pkl"[..], &b"\x80\x02}q\x00."[..]] {
            let e = check(bytes).unwrap_err();
            assert!(e.contains("PyTorch checkpoint") && e.contains("save_file"), "{e}");
        }
        // A huge length is left to the crate ("header too large"), not called truncated.
        check(&u64::MAX.to_le_bytes()).unwrap();
        // A header of 640 bytes starts with the pickle magic 80 02: still a safetensors file.
        let header = format!("{{{}}}", " ".repeat(638));
        check(&file(&header, 0)).unwrap();
    }

    #[test]
    fn a_name_listed_twice_is_named() {
        let header = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        assert_eq!(check(&file(header, 4)).unwrap_err(), "the header lists tensor 'a' more than once");
    }

    #[test]
    fn headers_that_are_not_json_maps_are_left_to_the_crate() {
        check(&file("not json", 0)).unwrap();
        check(&file("[1,2]", 0)).unwrap();
    }
}
