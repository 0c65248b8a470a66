//! Latency figures of the ignored benchmark tests (`bench_roundtrip`,
//! `bench_scale`): percentiles of millisecond samples, printed as JSON.

/// The `p` percentile (0–1) of `sorted` (nearest rank; 0 when empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Count, p50, p99 and max of `ms`, rounded to 0.1 ms.
pub fn summary(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(|a, b| a.total_cmp(b));
    let tenth = |v: f64| (v * 10.0).round() / 10.0;
    serde_json::json!({
        "n": ms.len(),
        "p50_ms": tenth(percentile(&ms, 0.50)),
        "p99_ms": tenth(percentile(&ms, 0.99)),
        "max_ms": tenth(ms.last().copied().unwrap_or(0.0)),
    })
}
