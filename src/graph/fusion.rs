//! Fusion as a short list of named rules. A block builder asks
//! `fusion.allows(rule)` and emits either the fused kernel or the chain of
//! single ops it replaces; both must agree with each other and with the CPU
//! reference (each fused kernel's reference is the composition of the
//! unfused references), which the golden tests check per block.

use std::collections::BTreeSet;

/// One fusion: a chain of ops replaced by a hand-written kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// CBAM: shared MLP on avg and max pools, sum, sigmoid in one kernel.
    CbamChannelMlp,
    /// CBAM: channel gate fused with the per-pixel channel mean/max.
    CbamGatePool,
    /// CBAM: k x k conv + sigmoid + both gates (+ residual + ReLU) writing the output.
    CbamSpatialGate,
    /// SK: branch sum fused with the global average pool.
    SkSumPool,
    /// SK: attention MLP and softmax over branches in one kernel.
    SkAttention,
    /// Non-local: theta/phi/g as one GEMM, flash attention (no Q x K matrix), W + BN + residual as one epilogue.
    NonLocalFlash,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 6] = [
        Rule::CbamChannelMlp,
        Rule::CbamGatePool,
        Rule::CbamSpatialGate,
        Rule::SkSumPool,
        Rule::SkAttention,
        Rule::NonLocalFlash,
    ];

    /// What the rule replaces, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::CbamChannelMlp => "global pools -> fc1 -> ReLU -> fc2 -> sum -> sigmoid",
            Rule::CbamGatePool => "channel gate -> channel mean/max",
            Rule::CbamSpatialGate => "k x k conv -> sigmoid -> spatial gate (-> + residual -> ReLU)",
            Rule::SkSumPool => "sum of branches -> global average pool",
            Rule::SkAttention => "fc (+BN+ReLU) -> per-branch fc -> softmax over branches",
            Rule::NonLocalFlash => {
                "theta, phi, g convs -> theta^T phi -> softmax over keys -> f g -> W (+BN) -> + x \
                 (Q x K never stored)"
            }
        }
    }
}

/// Which rules a graph builder may apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fusion {
    rules: BTreeSet<Rule>,
}

impl Fusion {
    /// Every rule on (the default).
    pub fn all() -> Fusion {
        Fusion { rules: Rule::ALL.into_iter().collect() }
    }

    /// Every rule off: the plan is built from single ops only.
    pub fn none() -> Fusion {
        Fusion { rules: BTreeSet::new() }
    }

    /// Whether `rule` may be applied.
    pub fn allows(&self, rule: Rule) -> bool {
        self.rules.contains(&rule)
    }
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::all()
    }
}
