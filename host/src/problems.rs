//! Counting and reporting lines that were not scored, without flooding standard error.
//!
//! Each kind of problem (not JSON, field missing, too long...) is reported with its input
//! position for the first few occurrences, then only every `2^k`-th, and the end-of-run summary
//! gives the totals.

use std::collections::BTreeMap;

use crate::annotation::LineError;

/// Occurrences of a kind reported one by one before thinning out.
const FIRST: u64 = 10;

#[derive(Debug, Default)]
pub struct Problems {
    counts: BTreeMap<&'static str, u64>,
}

impl Problems {
    /// Counts one unscored line at `source`:`number`, reporting it when due.
    pub fn record(&mut self, source: &str, number: u64, error: &LineError) {
        let count = self.counts.entry(error.kind()).or_default();
        *count += 1;
        let n = *count;
        if n <= FIRST || n.is_power_of_two() {
            let more = if n == FIRST {
                " (further lines of this kind are reported sparsely)"
            } else {
                ""
            };
            // A repeated delivery is expected of CloudTrail: told, not warned of.
            if let LineError::Duplicate(_) = error {
                tracing::info!(
                    source,
                    line = number,
                    kind = error.kind(),
                    occurrence = n,
                    "line not learned again: {error}{more}"
                );
            } else {
                tracing::warn!(
                    source,
                    line = number,
                    kind = error.kind(),
                    occurrence = n,
                    "line not scored: {error}{more}"
                );
            }
        }
    }

    /// The count of each kind so far.
    pub fn counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.counts.iter().map(|(&k, &v)| (k, v))
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// `kind=count` pairs, for the summary.
    pub fn breakdown(&self) -> String {
        self.counts
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}
