//! Compile time of generated compositions of 1,000 to 10,000 resources
//! (`cargo bench -p canon-lang`). Goal: 10,000 resources in under 500 ms,
//! growing linearly.

use std::hint::black_box;
use std::time::Duration;

use canon_lang::{compile_str, MapLoader, Options};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

include!("generate.rs");

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("compile");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for units in [100usize, 250, 500, 1000] {
        let src = generate(units);
        g.throughput(Throughput::Elements((units * 10) as u64));
        g.bench_with_input(BenchmarkId::new("resources", units * 10), &src, |b, src| {
            b.iter(|| {
                let out = compile_str(
                    "bench.lw",
                    black_box(src),
                    &MapLoader::default(),
                    Options::default(),
                );
                assert!(out.compiled.is_some());
                out
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
