//! Criterion micro-benchmarks of the inner loop: 100 steps of a batch of
//! lanes (noise draws and spike detection included, as in the ensemble),
//! tabulated and exact rates; and the synaptic coupling sum.
//! `cargo bench --bench step`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use spikesweep::model::{Coupling, Topology};
use spikesweep::run::integrate_lanes;
use spikesweep::spec::ExperimentSpec;

fn network(n: usize, rates: &str) -> spikesweep::spec::TrialConfig {
    let text = format!(
        "name = \"b\"\n[time]\nduration_ms = 1.0\n[integrator]\nrates = \"{rates}\"\n[network]\nn = {n}\nstrength = 0.1\nnormalize = true\n[noise]\nsigma = 2.0\n"
    );
    ExperimentSpec::parse(&text).unwrap().resolve(&[]).unwrap()
}

fn steps(c: &mut Criterion) {
    // (neurons, lanes): a pair alone, a pair in the 16 lanes the ensemble
    // steps together, a 100-neuron network.
    for (n, lanes) in [(2usize, 1u64), (2, 16), (100, 1)] {
        for rates in ["table", "exact"] {
            let cfg = network(n, rates);
            let seeds: Vec<u64> = (0..lanes).collect();
            let total = n as u64 * lanes * cfg.n_steps;
            c.bench_function(
                &format!(
                    "{} exp-midpoint steps, {n} neurons x {lanes} lanes ({total} neuron-steps), {rates}",
                    cfg.n_steps
                ),
                |b| b.iter(|| integrate_lanes(black_box(&cfg), &seeds, |_, _, _| {})),
            );
        }
    }
}

fn coupling(c: &mut Criterion) {
    let n = 100;
    let s: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin().abs()).collect();
    let mut drive = vec![0.0; n];
    for (name, coupling) in [
        ("all-to-all (O(n))", Coupling::new(&Topology::AllToAll, n, 0.1)),
        (
            "ring, compressed rows (O(edges))",
            Coupling::new(&Topology::Ring, n, 0.1),
        ),
    ] {
        c.bench_function(&format!("synaptic drive, {n} neurons, {name}"), |b| {
            b.iter(|| coupling.drive(black_box(&s), &mut drive))
        });
    }
}

criterion_group!(benches, steps, coupling);
criterion_main!(benches);
