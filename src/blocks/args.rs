//! Block arguments given as `KEY=VALUE` with PyTorch's constructor names and
//! Python-like values: `stride=2`, `size=7,6`, `size=(7, 6)`, `kernel_size=[3,5]`,
//! `split_input=false`, `rd_ratio=0.0625`. Each architecture declares its
//! [`Param`]s: a key it does not declare is an error listing the valid ones, and
//! a declared key its builder did not read is an error too (never silently ignored).

use crate::{Error, Result};
use std::collections::BTreeMap;
use std::fmt::Display;

/// One constructor argument an architecture accepts, for `--help` and validation.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// PyTorch's name.
    pub name: &'static str,
    /// PyTorch's default, or where the value comes from ("from the weights").
    pub default: &'static str,
}

/// A [`Param`] (short, for the architecture tables).
pub const fn param(name: &'static str, default: &'static str) -> Param {
    Param { name, default }
}

/// Arguments for one block, consumed by its builder.
#[derive(Clone, Debug)]
pub struct Args {
    arch: String,
    values: BTreeMap<String, String>,
    known: Vec<&'static str>,
}

impl Args {
    /// Parses `KEY=VALUE` strings for `arch`, which accepts `params`.
    pub fn for_params(arch: &str, params: &[Param], items: &[String]) -> Result<Args> {
        let args = Args::parse(arch, items)?;
        let unknown: Vec<&str> =
            args.values.keys().map(String::as_str).filter(|k| !params.iter().any(|p| p.name == *k)).collect();
        if !unknown.is_empty() {
            let valid: Vec<&str> = params.iter().map(|p| p.name).collect();
            let valid = if valid.is_empty() { "none".to_string() } else { valid.join(", ") };
            return Err(Error::invalid(arch, format!("unknown argument(s) {}; valid: {valid}", unknown.join(", "))));
        }
        Ok(args)
    }

    /// Parses `KEY=VALUE` strings for `arch` (validated by [`Args::finish`] only).
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
        // Python writes ratios as fractions (rd_ratio=1/16): accept a / b too.
        let parsed = match raw.split_once('/') {
            Some((a, b)) => a.trim().parse::<f32>().and_then(|a| b.trim().parse::<f32>().map(|b| a / b)),
            None => raw.parse::<f32>(),
        };
        match parsed {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.bad(key, &raw, "a finite number such as 0.0625 or 1/16")),
        }
    }

    /// Whether `key` was given.
    pub fn given(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// One integer when given.
    pub fn opt_usize(&mut self, key: &'static str) -> Result<Option<usize>> {
        if !self.given(key) {
            self.known.push(key);
            return Ok(None);
        }
        self.usize(key, 0).map(Some)
    }

    /// A number when given.
    pub fn opt_f32(&mut self, key: &'static str) -> Result<Option<f32>> {
        if !self.given(key) {
            self.known.push(key);
            return Ok(None);
        }
        self.f32(key, 0.0).map(Some)
    }

    /// A boolean when given.
    pub fn opt_bool(&mut self, key: &'static str) -> Result<Option<bool>> {
        if !self.given(key) {
            self.known.push(key);
            return Ok(None);
        }
        self.bool(key, false).map(Some)
    }

    /// A value the weights reveal: `found` (described by `source`), which must
    /// equal the argument when the user gave one.
    pub fn inferred<T: PartialEq + Display>(
        &mut self,
        key: &'static str,
        given: Option<T>,
        found: T,
        source: impl Display,
    ) -> Result<T> {
        match given {
            Some(v) if v != found => Err(self.contradiction(key, &v, format!("{source} gives {found}"))),
            _ => Ok(found),
        }
    }

    /// The error for `key=value` disagreeing with the weights (`why` says how).
    pub fn contradiction(&self, key: &str, value: &dyn Display, why: String) -> Error {
        Error::invalid(&self.arch, format!("argument {key}={value} contradicts the weights: {why}"))
    }

    /// An argument that only matters in training (dropout rates, initialisation):
    /// any value is accepted and does not change inference.
    pub fn training_only(&mut self, key: &'static str) {
        self.known.push(key);
    }

    /// A word that must be one of `allowed` (the first is the default), e.g. the
    /// activation layer, which glimpse supports only as PyTorch's default.
    pub fn choice(&mut self, key: &'static str, allowed: &[&str]) -> Result<String> {
        let value = self.raw_str(key, allowed[0])?;
        let bare = value.trim_matches(|c| c == '\'' || c == '"');
        match allowed.iter().find(|a| a.eq_ignore_ascii_case(bare)) {
            Some(a) => Ok(a.to_string()),
            None => Err(self.bad(key, &value, &format!("one of {} (glimpse supports no other)", allowed.join(", ")))),
        }
    }

    /// A word such as `relu`, or `default`.
    pub fn raw_str(&mut self, key: &'static str, default: &str) -> Result<String> {
        Ok(self.raw(key).unwrap_or_else(|| default.to_string()))
    }

    /// Fails on any argument no builder asked for, listing the ones it read.
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
