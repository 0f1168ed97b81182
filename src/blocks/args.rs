//! Block arguments given as `KEY=VALUE` with PyTorch's names and Python-like
//! values: `stride=2`, `size=7,6`, `size=(7, 6)`, `kernel_size=[3,5]`,
//! `split_input=false`. Every key must be used: a misspelt one is an error
//! listing the valid ones.

use crate::{Error, Result};
use std::collections::BTreeMap;

/// Arguments for one block, consumed by its builder.
#[derive(Clone, Debug)]
pub struct Args {
    arch: String,
    values: BTreeMap<String, String>,
    known: Vec<&'static str>,
}

impl Args {
    /// Parses `KEY=VALUE` strings for `arch`.
    pub fn parse(arch: &str, items: &[String]) -> Result<Args> {
        let mut values = BTreeMap::new();
        for item in items {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| Error::invalid(arch, format!("argument '{item}' is not KEY=VALUE")))?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() || v.is_empty() {
                return Err(Error::invalid(arch, format!("argument '{item}' is not KEY=VALUE")));
            }
            if values.insert(k.to_string(), v.to_string()).is_some() {
                return Err(Error::invalid(arch, format!("argument '{k}' is given twice")));
            }
        }
        Ok(Args { arch: arch.to_string(), values, known: Vec::new() })
    }

    /// No arguments.
    pub fn none(arch: &str) -> Args {
        Args { arch: arch.to_string(), values: BTreeMap::new(), known: Vec::new() }
    }

    fn raw(&mut self, key: &'static str) -> Option<String> {
        self.known.push(key);
        self.values.get(key).cloned()
    }

    fn bad(&self, key: &str, value: &str, want: &str) -> Error {
        Error::invalid(&self.arch, format!("argument {key}={value}: expected {want}"))
    }

    /// A list of integers (`3`, `3,5`, `(3, 5)`, `[3,5]`), or `default`.
    pub fn usizes(&mut self, key: &'static str, default: &[usize]) -> Result<Vec<usize>> {
        let Some(raw) = self.raw(key) else { return Ok(default.to_vec()) };
        let inner = raw.trim_matches(|c| matches!(c, '(' | ')' | '[' | ']'));
        let parsed: Option<Vec<usize>> =
            inner.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().ok()).collect();
        match parsed {
            Some(list) if !list.is_empty() => Ok(list),
            _ => Err(self.bad(key, &raw, "a non-negative integer or a list of them like 3,5")),
        }
    }

    /// One integer, or `default`.
    pub fn usize(&mut self, key: &'static str, default: usize) -> Result<usize> {
        let list = self.usizes(key, &[default])?;
        match list[..] {
            [v] => Ok(v),
            _ => Err(self.bad(key, &format!("{list:?}"), "a single integer")),
        }
    }

    /// A pair: `7` means (7, 7), `7,6` means (7, 6), as PyTorch's `_pair`.
    pub fn pair(&mut self, key: &'static str, default: [usize; 2]) -> Result<[usize; 2]> {
        let list = self.usizes(key, &default)?;
        match list[..] {
            [v] => Ok([v, v]),
            [a, b] => Ok([a, b]),
            _ => Err(self.bad(key, &format!("{list:?}"), "one integer or two (h,w)")),
        }
    }

    /// A pair that must be given.
    pub fn required_pair(&mut self, key: &'static str) -> Result<[usize; 2]> {
        if !self.values.contains_key(key) {
            self.known.push(key);
            return Err(Error::invalid(&self.arch, format!("needs argument {key}=H,W")));
        }
        self.pair(key, [0, 0])
    }

    /// A boolean (`true`/`false`, `True`/`False`, `1`/`0`), or `default`.
    pub fn bool(&mut self, key: &'static str, default: bool) -> Result<bool> {
        let Some(raw) = self.raw(key) else { return Ok(default) };
        match raw.as_str() {
            "true" | "True" | "1" => Ok(true),
            "false" | "False" | "0" => Ok(false),
            _ => Err(self.bad(key, &raw, "true or false")),
        }
    }

    /// A finite number, or `default`.
    pub fn f32(&mut self, key: &'static str, default: f32) -> Result<f32> {
        let Some(raw) = self.raw(key) else { return Ok(default) };
        match raw.parse::<f32>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.bad(key, &raw, "a finite number")),
        }
    }

    /// A word such as `relu`, or `default`.
    pub fn raw_str(&mut self, key: &'static str, default: &str) -> Result<String> {
        Ok(self.raw(key).unwrap_or_else(|| default.to_string()))
    }

    /// Fails on any argument no builder asked for, listing the valid ones.
    pub fn finish(self) -> Result<()> {
        let unknown: Vec<&str> = self.values.keys().map(String::as_str).filter(|k| !self.known.contains(k)).collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let mut valid = self.known.clone();
        valid.sort();
        valid.dedup();
        let valid = if valid.is_empty() { "none".to_string() } else { valid.join(", ") };
        Err(Error::invalid(&self.arch, format!("unknown argument(s) {}; valid: {valid}", unknown.join(", "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Args {
        Args::parse("X", &items.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn python_like_values_parse() {
        let mut a = args(&["stride=2", "size=(7, 6)", "kernel_size=[3,5]", "split_input=False", "k=3"]);
        assert_eq!(a.usize("stride", 1).unwrap(), 2);
        assert_eq!(a.pair("size", [0, 0]).unwrap(), [7, 6]);
        assert_eq!(a.usizes("kernel_size", &[3]).unwrap(), vec![3, 5]);
        assert!(!a.bool("split_input", true).unwrap());
        assert_eq!(a.pair("k", [1, 1]).unwrap(), [3, 3]);
        assert_eq!(a.usize("dilation", 1).unwrap(), 1);
        a.finish().unwrap();
    }

    #[test]
    fn bad_and_unknown_arguments_are_named() {
        assert!(Args::parse("X", &["stride".into()]).unwrap_err().to_string().contains("KEY=VALUE"));
        assert!(Args::parse("X", &["a=1".into(), "a=2".into()]).unwrap_err().to_string().contains("twice"));
        let mut a = args(&["stride=two"]);
        assert!(a.usize("stride", 1).unwrap_err().to_string().contains("stride=two"));
        let mut a = args(&["strde=2"]);
        a.usize("stride", 1).unwrap();
        let e = a.finish().unwrap_err().to_string();
        assert!(e.contains("unknown argument(s) strde") && e.contains("valid: stride"), "{e}");
        let mut a = args(&["flag=maybe"]);
        assert!(a.bool("flag", true).is_err());
        let mut a = args(&[]);
        assert!(a.required_pair("size").unwrap_err().to_string().contains("size=H,W"));
    }
}
