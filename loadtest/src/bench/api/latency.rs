//! Response times of one kind of request, summed up as the percentiles a target names.

use std::time::Duration;

use serde_json::{Value, json};

use super::super::report::rounded;

#[derive(Debug, Default)]
pub struct Latencies {
    samples: Vec<Duration>,
}

impl Latencies {
    pub fn record(&mut self, took: Duration) {
        self.samples.push(took);
    }

    /// The `percent`th percentile in milliseconds, by nearest rank (p100 is the maximum).
    pub fn percentile_ms(&self, percent: f64) -> f64 {
        let mut sorted = self.samples.clone();
        sorted.sort();
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
    }

    /// `{requests, p50_ms, p95_ms, p99_ms, max_ms}`.
    pub fn summary(&self) -> Value {
        json!({
            "requests": self.samples.len(),
            "p50_ms": rounded(self.percentile_ms(50.0), 1),
            "p95_ms": rounded(self.percentile_ms(95.0), 1),
            "p99_ms": rounded(self.percentile_ms(99.0), 1),
            "max_ms": rounded(self.percentile_ms(100.0), 1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut latencies = Latencies::default();
        for ms in (1..=100).rev() {
            latencies.record(Duration::from_millis(ms));
        }
        assert_eq!(latencies.percentile_ms(50.0), 50.0);
        assert_eq!(latencies.percentile_ms(99.0), 99.0);
        assert_eq!(latencies.percentile_ms(100.0), 100.0);
    }
}
