//! k6-style pass/fail thresholds: `p95 < 500ms`, `p(99) < 1s`, `avg < 200ms`,
//! `error_rate < 0.001` (or `< 0.1%`), `rps > 100`. They decide the exit code.

use serde::{Deserialize, Deserializer, Serialize};

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// A latency percentile (0-100], in milliseconds.
    Percentile(f64),
    /// Mean latency in milliseconds.
    Avg,
    /// Smallest latency in milliseconds.
    Min,
    /// Largest latency in milliseconds.
    Max,
    /// Failed requests / all requests (a fraction, 0.01 = 1 %).
    ErrorRate,
    /// Requests per second over the whole run.
    Rps,
    /// Number of failed requests.
    Failures,
    /// Number of requests.
    Requests,
}

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
}

impl Op {
    /// Applies the operator.
    pub fn holds(self, measured: f64, limit: f64) -> bool {
        match self {
            Op::Lt => measured < limit,
            Op::Le => measured <= limit,
            Op::Gt => measured > limit,
            Op::Ge => measured >= limit,
        }
    }
}

/// One parsed threshold expression.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    /// The text as written.
    pub source: String,
    /// What is measured.
    pub metric: Metric,
    /// How it is compared.
    pub op: Op,
    /// The limit, normalised: milliseconds for latencies, a fraction for error rates.
    pub limit: f64,
}

impl Threshold {
    /// Parses `METRIC OP VALUE`.
    pub fn parse(src: &str) -> Result<Self, String> {
        let s = src.trim();
        let bad = |why: &str| {
            format!(
                "bad threshold `{src}`: {why} (examples: `p95 < 500ms`, `p(99) < 1s`, \
                 `avg < 200ms`, `error_rate < 0.001`, `error_rate < 0.1%`, `rps > 100`)"
            )
        };
        let op_pos = s.find(['<', '>']).ok_or_else(|| bad("no < or >"))?;
        let (lhs, rest) = s.split_at(op_pos);
        let (op, rhs) = if let Some(r) = rest.strip_prefix("<=") {
            (Op::Le, r)
        } else if let Some(r) = rest.strip_prefix(">=") {
            (Op::Ge, r)
        } else if let Some(r) = rest.strip_prefix('<') {
            (Op::Lt, r)
        } else {
            (Op::Gt, &rest[1..])
        };
        let name = lhs.trim().to_ascii_lowercase();
        let metric = match name.as_str() {
            "avg" | "mean" => Metric::Avg,
            "min" => Metric::Min,
            "max" => Metric::Max,
            "med" | "median" => Metric::Percentile(50.0),
            "error_rate" | "errors" | "http_req_failed" => Metric::ErrorRate,
            "rps" => Metric::Rps,
            "failures" => Metric::Failures,
            "requests" | "count" => Metric::Requests,
            other => {
                let p = other
                    .strip_prefix("p(")
                    .and_then(|x| x.strip_suffix(')'))
                    .or_else(|| other.strip_prefix('p'))
                    .ok_or_else(|| bad("unknown metric"))?;
                let p: f64 = p.parse().map_err(|_| bad("bad percentile"))?;
                if !(p > 0.0 && p <= 100.0) {
                    return Err(bad("percentile must be in (0, 100]"));
                }
                Metric::Percentile(p)
            }
        };
        let rhs = rhs.trim();
        let limit = match metric {
            Metric::Percentile(_) | Metric::Avg | Metric::Min | Metric::Max => {
                parse_ms(rhs).ok_or_else(|| bad("bad latency, use e.g. 500ms or 1s"))?
            }
            Metric::ErrorRate => match rhs.strip_suffix('%') {
                Some(pct) => pct.trim().parse::<f64>().map(|v| v / 100.0),
                None => rhs.parse::<f64>(),
            }
            .map_err(|_| bad("bad rate"))?,
            Metric::Rps | Metric::Failures | Metric::Requests => {
                rhs.parse().map_err(|_| bad("bad number"))?
            }
        };
        Ok(Self {
            source: s.to_string(),
            metric,
            op,
            limit,
        })
    }
}

/// `500ms`, `1s`, `1.5s`, `800us`, or a bare number of milliseconds.
fn parse_ms(s: &str) -> Option<f64> {
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (s, 1.0)
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(|v| v * mult)
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Threshold::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k6_and_short_forms() {
        let t = Threshold::parse("p(95)<500").unwrap();
        assert_eq!(
            (t.metric, t.op, t.limit),
            (Metric::Percentile(95.0), Op::Lt, 500.0)
        );
        let t = Threshold::parse("p99 <= 1.5s").unwrap();
        assert_eq!(
            (t.metric, t.op, t.limit),
            (Metric::Percentile(99.0), Op::Le, 1500.0)
        );
        let t = Threshold::parse("error_rate < 0.1%").unwrap();
        assert!((t.limit - 0.001).abs() < 1e-12);
        let t = Threshold::parse("rps > 100").unwrap();
        assert_eq!((t.metric, t.op), (Metric::Rps, Op::Gt));
        assert!(Threshold::parse("p95 = 3").is_err());
        assert!(Threshold::parse("speed < 3").is_err());
    }
}
