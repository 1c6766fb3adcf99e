//! Criterion micro-benchmarks of the inner loop: one network step (exact and
//! tabulated) and the synaptic coupling sum. `cargo bench --bench step`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use spikesweep::integrate::{step, GateTable, Lanes, Method, Scheme, State, StepInput, Workspace};
use spikesweep::model::{Coupling, Topology};
use spikesweep::spec::ExperimentSpec;

fn network(n: usize) -> spikesweep::spec::TrialConfig {
    let text =
        format!("name = \"b\"\n[time]\nduration_ms = 1.0\n[network]\nn = {n}\nstrength = 0.1\nnormalize = true\n");
    ExperimentSpec::parse(&text).unwrap().resolve(&[]).unwrap()
}

fn neuron_step(c: &mut Criterion) {
    // (neurons, lanes): a pair alone, a pair in the 8 lanes the ensemble
    // steps together, a 100-neuron network.
    for (n, lanes) in [(2usize, 1usize), (2, 8), (100, 1)] {
        let cfg = network(n);
        let net = &cfg.network;
        let total = n * lanes;
        let zeros = vec![0.0; total];
        let noise: Vec<f64> = (0..total).map(|i| 0.02 * ((i % 7) as f64 - 3.0)).collect();
        let input = StepInput {
            noise_dv: &noise,
            i_start: &zeros,
            i_mid: &zeros,
        };
        let table = GateTable::for_dt(0.01, Some(&net.synapse));
        let stacked = Lanes::new(vec![net; lanes]);
        for (name, t, fast) in [
            ("exact", None, false),
            ("tables", Some(&*table), false),
            ("fast", None, true),
        ] {
            let scheme = Scheme {
                method: Method::ExpMidpoint,
                dt_ms: 0.01,
                table: t,
                fast,
            };
            let mut st = State::stack((0..lanes).map(|_| State::at_rest(net, &vec![-65.0; n])));
            let mut ws = Workspace::new(total);
            c.bench_function(
                &format!("exp-midpoint step, {n} neurons x {lanes} lanes ({total} neuron-steps), {name}"),
                |b| b.iter(|| step(&stacked, &scheme, black_box(&mut st), &input, &mut ws)),
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

criterion_group!(benches, neuron_step, coupling);
criterion_main!(benches);
