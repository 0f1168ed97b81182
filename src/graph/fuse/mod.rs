//! The fusion pass: a short list of named rules applied to the canonical graph
//! the block builders emit (single ops only). Each rule is a small predicate
//! over op kinds, shapes and readers plus a rewrite to a hand-written fused
//! kernel, in the manner of ggml's `can_fuse_*`; there is no general pattern
//! engine. A rule never fuses through a value another node also reads, and
//! never drops a value that is a requested output (an attention map): it
//! either writes that value too or refuses, and says why in the [`Report`].
//!
//! Rules run one after the other in [`Rule::ALL`]'s order, each until it finds
//! nothing more to fuse: the block rules match the canonical chains first,
//! then the epilogue rules fold BatchNorm, bias, residual adds and
//! activations into whatever convs and GEMMs are left.

/// Unwraps a step of a match: a refusal ends the match with its reason.
macro_rules! step {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(why) => return Some(Err(why)),
        }
    };
}

mod cbam;
mod epilogue;
mod nonlocal;
mod sk;

use super::rewrite::Uses;
use super::{Graph, ValueId};
use crate::{Error, Result};
use std::collections::BTreeSet;
use std::fmt;

/// One fusion: a chain of single ops replaced by a hand-written kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// CBAM: global pools -> shared MLP -> sum -> sigmoid in one kernel.
    CbamChannelMlp,
    /// CBAM: k x k conv + sigmoid + both gates (+ residual + ReLU) writing the output.
    CbamSpatialGate,
    /// CBAM: channel gate fused with the per-pixel channel mean/max.
    CbamGatePool,
    /// SK: branch sum fused with the global average pool.
    SkSumPool,
    /// SK: attention MLP and softmax over branches in one kernel.
    SkAttention,
    /// Non-local: softmax(s theta^T phi) g^T as the flash kernel (no Q x K matrix).
    NonLocalFlash,
    /// Non-local: theta, phi, g 1x1 convs of a flash attention as one GEMM with stacked weights.
    NonLocalProjections,
    /// Conv or GEMM followed by a per-channel affine (BatchNorm, bias): folded into its epilogue.
    EpilogueAffine,
    /// Conv or GEMM followed by a residual add: the add moves into its epilogue.
    EpilogueResidual,
    /// Conv or GEMM followed by ReLU or sigmoid: the activation moves into its epilogue.
    EpilogueActivation,
}

/// What a rule found at one node: a rewrite to apply, or why it may not.
type Found = std::result::Result<Apply, String>;
/// A rewrite, ready to apply.
type Apply = Box<dyn FnOnce(&mut Graph) -> Result<()>>;
/// A rule's predicate at one node: None where its pattern does not start.
type Matcher = fn(&Graph, &Uses, usize) -> Option<Found>;

impl Rule {
    /// Every rule, in the order the pass applies them.
    pub const ALL: [Rule; 10] = [
        Rule::CbamChannelMlp,
        Rule::CbamSpatialGate,
        Rule::CbamGatePool,
        Rule::SkSumPool,
        Rule::SkAttention,
        Rule::NonLocalFlash,
        Rule::NonLocalProjections,
        Rule::EpilogueAffine,
        Rule::EpilogueResidual,
        Rule::EpilogueActivation,
    ];

    /// The name the command line takes (`--fuse cbam-gate-pool`).
    pub fn name(self) -> &'static str {
        match self {
            Rule::CbamChannelMlp => "cbam-channel-mlp",
            Rule::CbamSpatialGate => "cbam-spatial-gate",
            Rule::CbamGatePool => "cbam-gate-pool",
            Rule::SkSumPool => "sk-sum-pool",
            Rule::SkAttention => "sk-attention",
            Rule::NonLocalFlash => "nonlocal-flash",
            Rule::NonLocalProjections => "nonlocal-projections",
            Rule::EpilogueAffine => "epilogue-affine",
            Rule::EpilogueResidual => "epilogue-residual",
            Rule::EpilogueActivation => "epilogue-activation",
        }
    }

    /// The rule called `name`, or an error listing them.
    pub fn parse(name: &str) -> Result<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name.trim()).ok_or_else(|| {
            let names: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
            Error::invalid("fuse", format!("unknown rule '{name}'; rules: {}", names.join(", ")))
        })
    }

    /// What the rule replaces, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::CbamChannelMlp => "global pools -> fc1 -> ReLU -> fc2 -> sum -> sigmoid",
            Rule::CbamSpatialGate => {
                "k x k conv (+BN) -> sigmoid -> spatial gate of the channel-gated x (-> + residual -> ReLU)"
            }
            Rule::CbamGatePool => "channel gate -> channel mean/max (x * ca never stored)",
            Rule::SkSumPool => "sum of branches -> global average pool",
            Rule::SkAttention => "fc (+BN+ReLU) -> per-branch fc -> softmax over branches",
            Rule::NonLocalFlash => "theta^T phi (-> scale) -> softmax over keys -> g f^T (Q x K never stored)",
            Rule::NonLocalProjections => {
                "theta, phi, g 1x1 convs + biases (-> 2x2 max pools) of a flash attention (needs nonlocal-flash) \
                 -> one stacked GEMM (score scale folded into theta)"
            }
            Rule::EpilogueAffine => "conv/GEMM -> per-channel scale + shift (BatchNorm, bias), folded as constants",
            Rule::EpilogueResidual => "conv/GEMM -> + residual",
            Rule::EpilogueActivation => "conv/GEMM -> ReLU or sigmoid",
        }
    }

    /// The rule's predicate and rewrite (one line each: the logic lives in the rule files).
    fn matcher(self) -> Matcher {
        match self {
            Rule::CbamChannelMlp => cbam::channel_mlp,
            Rule::CbamSpatialGate => cbam::spatial_gate,
            Rule::CbamGatePool => cbam::gate_pool,
            Rule::SkSumPool => sk::sum_pool,
            Rule::SkAttention => sk::attention,
            Rule::NonLocalFlash => nonlocal::flash,
            Rule::NonLocalProjections => nonlocal::projections,
            Rule::EpilogueAffine => epilogue::affine,
            Rule::EpilogueResidual => epilogue::residual,
            Rule::EpilogueActivation => epilogue::activation,
        }
    }
}

/// Which rules may fire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fusion {
    rules: BTreeSet<Rule>,
}

impl Fusion {
    /// Every rule on (the default).
    pub fn all() -> Fusion {
        Fusion { rules: Rule::ALL.into_iter().collect() }
    }

    /// Every rule off: the plan runs the canonical graph of single ops.
    pub fn none() -> Fusion {
        Fusion { rules: BTreeSet::new() }
    }

    /// Only `rules` on.
    pub fn only(rules: &[Rule]) -> Fusion {
        Fusion { rules: rules.iter().copied().collect() }
    }

    /// Every rule but `rules`.
    pub fn without(rules: &[Rule]) -> Fusion {
        Fusion { rules: Rule::ALL.into_iter().filter(|r| !rules.contains(r)).collect() }
    }

    /// Whether `rule` may fire.
    pub fn allows(&self, rule: Rule) -> bool {
        self.rules.contains(&rule)
    }
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::all()
    }
}

/// One place a rule fired or was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The rule.
    pub rule: Rule,
    /// The scope of the node where its pattern starts ("layer2.0.se"; empty at the top).
    pub at: String,
    /// That node's op.
    pub op: &'static str,
    /// None when it fired; why not when it was refused.
    pub refused: Option<String>,
}

/// Where each rule fired and where it was refused, and why.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// In the order they happened (refusals after each rule's firings).
    pub events: Vec<Event>,
}

impl Report {
    /// How often `rule` fired.
    pub fn fired(&self, rule: Rule) -> usize {
        self.events.iter().filter(|e| e.rule == rule && e.refused.is_none()).count()
    }

    /// The reasons `rule` was refused, in order.
    pub fn refusals(&self, rule: Rule) -> Vec<&str> {
        self.events.iter().filter(|e| e.rule == rule).filter_map(|e| e.refused.as_deref()).collect()
    }
}

impl fmt::Display for Report {
    /// Per rule: where it fired (places with their counts) and every refusal with its reason.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for rule in Rule::ALL {
            let events: Vec<&Event> = self.events.iter().filter(|e| e.rule == rule).collect();
            let fired: Vec<&Event> = events.iter().copied().filter(|e| e.refused.is_none()).collect();
            let refused = events.len() - fired.len();
            writeln!(
                f,
                "{:<20} fired {:>3}, refused {:>3}   ({})",
                rule.name(),
                fired.len(),
                refused,
                rule.describe()
            )?;
            let mut places: Vec<(String, usize)> = Vec::new();
            for e in &fired {
                let place = if e.at.is_empty() { "(top)".to_string() } else { e.at.clone() };
                match places.last_mut() {
                    Some((p, count)) if *p == place => *count += 1,
                    _ => places.push((place, 1)),
                }
            }
            if !places.is_empty() {
                let list: Vec<String> =
                    places.iter().map(|(p, c)| if *c > 1 { format!("{p} x{c}") } else { p.clone() }).collect();
                writeln!(f, "    fired at: {}", list.join(", "))?;
            }
            for e in events.iter().filter(|e| e.refused.is_some()) {
                let place = if e.at.is_empty() { "(top)" } else { &e.at };
                writeln!(f, "    refused at {place} ({}): {}", e.op, e.refused.as_deref().unwrap_or_default())?;
            }
        }
        Ok(())
    }
}

/// Applies the rules `fusion` allows to `graph`, each until it finds nothing
/// more, and reports where they fired and where they were refused.
pub fn fuse(graph: &mut Graph, fusion: &Fusion) -> Result<Report> {
    let mut report = Report::default();
    for rule in Rule::ALL {
        if !fusion.allows(rule) {
            continue;
        }
        let matcher = rule.matcher();
        // A rewrite changes readers and positions: look again from the start after each one.
        while let Some((i, apply)) = first_match(graph, matcher) {
            let node = graph.node(i);
            let event = Event { rule, at: node.at.clone(), op: node.op.name(), refused: None };
            apply(graph)?;
            report.events.push(event);
        }
        let uses = graph.uses();
        for i in 0..graph.node_count() {
            if let Some(Err(why)) = matcher(graph, &uses, i) {
                let node = graph.node(i);
                report.events.push(Event { rule, at: node.at.clone(), op: node.op.name(), refused: Some(why) });
            }
        }
    }
    Ok(report)
}

/// The first node where `matcher` fires, with its rewrite.
fn first_match(graph: &Graph, matcher: Matcher) -> Option<(usize, Apply)> {
    let uses = graph.uses();
    (0..graph.node_count()).find_map(|i| match matcher(graph, &uses, i) {
        Some(Ok(apply)) => Some((i, apply)),
        _ => None,
    })
}

/// The one node reading `value`, or why a rule may not fuse through it:
/// it is a requested output (an attention map) or other nodes read it too.
fn sole_reader(g: &Graph, uses: &Uses, value: ValueId, what: &str) -> std::result::Result<usize, String> {
    if let Some(name) = uses.outputs(g, value).first() {
        return Err(format!("{what} is needed as the output '{name}'"));
    }
    match uses.readers(g, value) {
        [one] => Ok(*one),
        readers => {
            let ops: Vec<&str> = readers.iter().map(|&r| g.node(r).op.name()).collect();
            Err(format!("{what} has {} readers ({})", readers.len(), ops.join(", ")))
        }
    }
}

/// Whether `op` takes inputs of these shapes; a refusal naming the op's own
/// complaint when not (a rewrite never fails on shapes: its predicate asks first).
fn fits(op: &dyn crate::ops::Op, shapes: &[&crate::Shape]) -> std::result::Result<(), String> {
    op.output_shape(shapes).map(|_| ()).map_err(|e| format!("shapes do not fit the fused kernel: {e}"))
}

/// Replaces the chain `nodes` (its last node writes the chain's result) by
/// `op` on `inputs`, placed where the last node was: every input of the chain
/// is written before it. The chain's result becomes a view of the new output.
fn replace_chain(g: &mut Graph, nodes: &[usize], op: Box<dyn crate::ops::Op>, inputs: &[ValueId]) -> Result<ValueId> {
    let last = *nodes.iter().max().expect("a chain has nodes");
    let (result, at) = (g.node(last).output, g.node(last).at.clone());
    let out = g.insert(last + 1, op, inputs, &at)?;
    g.retarget(result, out)?;
    g.remove(nodes);
    Ok(out)
}
