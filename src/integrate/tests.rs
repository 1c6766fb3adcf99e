//! Tests of the stepper on lone networks built by hand.

use super::stepper::ionic_current_generic;
use super::*;
use crate::model::neuron::{Kinetics, ModelDef};
use crate::model::{Cell, Coupling, KineticSynapse, Network, RiseDecay};
use crate::simd::Simd;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::sync::Arc;

fn hh() -> Cell {
    Cell::defaults(Arc::new(ModelDef::built_in("hh").unwrap()))
}

fn single(i_inj: f64, cell: Cell) -> Network {
    Network {
        cell,
        i_inj: vec![i_inj],
        synapse: KineticSynapse::default(),
        coupling: Coupling::Uncoupled,
        gap: Coupling::Uncoupled,
        rise_decay: None,
    }
}

/// The rates of `net` (its gates and its synapse's) for `method` at `dt`.
fn rates(net: &Network, method: Method, dt_ms: f64, mode: RatesMode) -> Rates {
    let mut vars = net.cell.kinetics();
    vars.push(match net.rise_decay {
        None => net.synapse.gate(),
        Some(rd) => rd.gate(&net.synapse),
    });
    Rates::new(&vars, spans(method, dt_ms), mode)
}

/// `steps` steps of a lone network, with white-noise increments `dv`
/// (one per step) or none.
fn run(net: &Network, method: Method, mode: RatesMode, dt_ms: f64, st: &mut State, dv: &[f64]) {
    let rates = rates(net, method, dt_ms, mode);
    let kernel = Kernel::new(net, &rates, method, dt_ms, crate::simd::Simd::Portable);
    let lanes = Lanes::one(net);
    let mut ws = Workspace::new(&kernel, st.len(), st.vars.len());
    let zeros = vec![0.0; st.len()];
    for &d in dv {
        let noise = vec![d; st.len()];
        let input = StepInput {
            noise_dv: &noise,
            i_start: &zeros,
            i_mid: &zeros,
        };
        step(&kernel, &lanes, st, &input, &mut ws);
    }
}

#[test]
fn steady_state_is_a_fixed_point_of_every_method() {
    // A neuron at rest with I = I_ion(rest) has zero drift: one step of
    // any method, either rates mode, leaves it where it is, up to the
    // table's interpolation (1e-9) or rounding (1e-12).
    let cell = hh();
    let v0 = -65.0;
    let i_rest = cell.ionic_current(v0, &cell.gates_at_rest(v0));
    let net = single(i_rest, cell);
    for (_, method) in Method::ALL {
        for (mode, tol) in [(RatesMode::Exact, 1e-12), (RatesMode::Table, 1e-9)] {
            let mut st = State::at_rest(&net, &[v0]);
            let before = st.clone();
            run(&net, method, mode, 0.05, &mut st, &[0.0]);
            assert!(
                (st.v_mv[0] - before.v_mv[0]).abs() < tol,
                "{method:?} {mode:?}: V {}",
                st.v_mv[0]
            );
            for (a, b) in st.vars.iter().zip(&before.vars) {
                assert!((a[0] - b[0]).abs() < tol, "{method:?} {mode:?}: {a:?} vs {b:?}");
            }
        }
    }
}

#[test]
fn passive_membrane_decays_with_tau_c_over_gl() {
    // With the active conductances off the membrane is linear:
    // V(t) = EL + (V0 - EL) exp(-t gL / C). tau = C/gL = 2/0.3 = 6.667 ms
    // here (C = 2 to check that C enters). After 20 ms the exact
    // deviation is 10 * exp(-3) = 0.4979 mV; a second-order method at
    // dt = 0.01 errs O(dt^2 / tau^2) relative, below 1e-6 mV.
    let mut cell = hh();
    for (name, x) in [("g_na", 0.0), ("g_k", 0.0), ("c_m", 2.0)] {
        let k = cell.model.param(name).unwrap();
        cell.values[k] = x;
    }
    let (e_l, g_l) = (cell.value("e_l_mv"), cell.value("g_l"));
    let net = single(0.0, cell);
    let mut st = State::at_rest(&net, &[e_l + 10.0]);
    run(&net, Method::ExpMidpoint, RatesMode::Table, 0.01, &mut st, &[0.0; 2000]);
    let exact = e_l + 10.0 * (-20.0 / (2.0 / g_l)).exp();
    assert!((st.v_mv[0] - exact).abs() < 1e-6, "{} vs {exact}", st.v_mv[0]);
}

#[test]
fn gates_stay_in_the_unit_interval_for_any_v_and_dt() {
    // From both ends of [0, 1], V clamped anywhere in +-1000 mV (beyond,
    // a trial is declared diverged) and dt from 1e-4 to 1e3 ms: every
    // exponential update is a convex combination, in both rates modes.
    let net = single(0.0, hh());
    for mode in [RatesMode::Exact, RatesMode::Table] {
        for dt in [1e-4, 0.01, 0.1, 1.0, 10.0, 1e3] {
            let r = rates(&net, Method::ExpEuler, dt, mode);
            for k in 0..=400 {
                let v = [-1000.0 + 5.0 * k as f64];
                let mut regs = vec![[0.0; 1]; r.program().n_registers()];
                let (mut inf, mut decay) = (vec![[0.0; 1]; r.padded_vars()], vec![[0.0; 1]; r.padded_vars()]);
                r.eval(&v, 0, Simd::Portable, &mut regs, &mut inf, &mut decay);
                for q in 0..r.n_vars() {
                    for x in [0.0, 0.3, 1.0] {
                        let y = (inf[q][0] + (x - inf[q][0]) * decay[q][0]).clamp(0.0, 1.0);
                        assert!(
                            (0.0..=1.0).contains(&inf[q][0]) && (0.0..=1.0).contains(&decay[q][0]),
                            "V={} dt={dt}",
                            v[0]
                        );
                        assert!(y.is_finite(), "V={} dt={dt} x={x}", v[0]);
                    }
                }
            }
        }
    }
}

#[test]
fn tabulated_rates_match_the_exact_ones_closely() {
    // Linear interpolation on 0.05 mV bins: the error of x_inf and of the
    // decay factors is below h^2/8 max|f''|; over -100..60 mV a gate after
    // one step differs from the exact one by < 1e-6, for every model.
    for name in ["hh", "wang-buzsaki", "traub-miles", "pospischil-rs"] {
        let net = single(0.0, Cell::defaults(Arc::new(ModelDef::built_in(name).unwrap())));
        let (table, exact) = (
            rates(&net, Method::ExpMidpoint, 0.01, RatesMode::Table),
            rates(&net, Method::ExpMidpoint, 0.01, RatesMode::Exact),
        );
        let mut worst = 0.0f64;
        let mut regs = vec![[0.0; 16]; table.program().n_registers()];
        let (j, jp) = (table.n_vars(), table.padded_vars());
        for start in 0..730 {
            let v: [f64; 16] = std::array::from_fn(|l| -100.0 + 0.0137 * (16 * start + l) as f64);
            for span in [0, 1] {
                let (mut ti, mut td, mut xi, mut xd) = (
                    vec![[0.0; 16]; jp],
                    vec![[0.0; 16]; jp],
                    vec![[0.0; 16]; jp],
                    vec![[0.0; 16]; jp],
                );
                table.eval(&v, span, Simd::Portable, &mut regs, &mut ti, &mut td);
                exact.eval(&v, span, Simd::Portable, &mut regs, &mut xi, &mut xd);
                for q in 0..j {
                    for l in 0..16 {
                        for x in [0.0, 0.5, 1.0] {
                            let a = ti[q][l] + (x - ti[q][l]) * td[q][l];
                            let b = xi[q][l] + (x - xi[q][l]) * xd[q][l];
                            worst = worst.max((a - b).abs());
                        }
                    }
                }
            }
        }
        assert!(worst < 1e-6, "{name}: {worst}");
    }
}

#[test]
fn off_the_grid_the_table_mode_uses_the_exact_rates() {
    // The grid's spacing, as a product (positions) and as a step (the model
    // checks, the table's voltages): one and the same.
    assert_eq!(20.0 * crate::model::neuron::CHECKED_STEP_MV, 1.0);
    // Below -150 mV and above 100 mV there is no table: the values are
    // the exact ones, bit for bit, whatever the chunk's other entries.
    let net = single(0.0, hh());
    let (table, exact) = (
        rates(&net, Method::ExpMidpoint, 0.01, RatesMode::Table),
        rates(&net, Method::ExpMidpoint, 0.01, RatesMode::Exact),
    );
    let v = [-65.013, -200.0, 150.0, -10.0];
    let (j, jp) = (table.n_vars(), table.padded_vars());
    let mut regs = vec![[0.0; 4]; table.program().n_registers()];
    let (mut ti, mut td, mut xi, mut xd) = (
        vec![[0.0; 4]; jp],
        vec![[0.0; 4]; jp],
        vec![[0.0; 4]; jp],
        vec![[0.0; 4]; jp],
    );
    table.eval(&v, 1, Simd::Portable, &mut regs, &mut ti, &mut td);
    exact.eval(&v, 1, Simd::Portable, &mut regs, &mut xi, &mut xd);
    for q in 0..j {
        for l in [1, 2] {
            assert_eq!(
                (ti[q][l].to_bits(), td[q][l].to_bits()),
                (xi[q][l].to_bits(), xd[q][l].to_bits())
            );
        }
        assert_ne!(ti[q][0], xi[q][0], "on the grid the table is used");
    }
}

#[test]
fn strong_order_one_on_a_linear_sde_with_known_solution() {
    // Passive membrane with white noise: C dV = -gL (V - EL) dt + sigma dW,
    // an OU process whose exact solution on a path is
    // V(t+h) = EL + (V - EL) e^(-h/tau) + sigma/C int e^(-(t+h-s)/tau) dW(s).
    // The reference integrates that exactly on a grid 256 times finer
    // than the coarsest step; each method sees the same Brownian path,
    // summed over its steps. For additive noise every scheme here has
    // strong order 1: halving h halves E|V_h(T) - V(T)| (ratio 2; allowed
    // 1.6-2.6 for the Monte Carlo error of 300 paths).
    let mut cell = hh();
    for name in ["g_na", "g_k"] {
        let k = cell.model.param(name).unwrap();
        cell.values[k] = 0.0;
    }
    let (e_l, c_m, tau) = (cell.value("e_l_mv"), cell.c_m(), cell.c_m() / cell.value("g_l"));
    let net = single(0.0, cell);
    let (sigma, t_end, fine_per_coarsest, steps_coarsest) = (5.0, 12.8, 256usize, 16usize);
    let delta = t_end / steps_coarsest as f64 / fine_per_coarsest as f64;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(99);
    for method in [Method::ExpMidpoint, Method::Euler] {
        let mut err = [0.0f64; 3];
        let paths = 300;
        for _ in 0..paths {
            let dw: Vec<f64> = (0..steps_coarsest * fine_per_coarsest)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    delta.sqrt() * z
                })
                .collect();
            let mut x = 10.0;
            for w in &dw {
                x = x * (-delta / tau).exp() + sigma / c_m * (-delta / (2.0 * tau)).exp() * w;
            }
            let exact = e_l + x;
            for (level, e) in err.iter_mut().enumerate() {
                let per = fine_per_coarsest >> level;
                let dv: Vec<f64> = dw.chunks(per).map(|c| sigma / c_m * c.iter().sum::<f64>()).collect();
                let mut st = State::at_rest(&net, &[e_l + 10.0]);
                run(&net, method, RatesMode::Table, delta * per as f64, &mut st, &dv);
                *e += (st.v_mv[0] - exact).abs() / paths as f64;
            }
        }
        for k in 0..2 {
            let ratio = err[k] / err[k + 1];
            assert!((1.6..2.6).contains(&ratio), "{method:?}: errors {err:?}, ratio {ratio}");
        }
    }
}

#[test]
fn double_exponential_synapse_follows_its_analytic_step_response() {
    // With V held far above v_half (T(V) = 1) and x = s = 0 at t = 0:
    // s(t) = 1 - (td e^(-t/td) - tr e^(-t/tr)) / (td - tr). x is updated
    // exactly; s towards x at the midpoint, second order: at dt = 0.01 the
    // error stays below 1e-5 (it is O(dt^2 / tr^2)).
    let (tr, td) = (0.5, 5.0);
    let mut net = single(0.0, hh());
    net.rise_decay = Some(RiseDecay {
        tau_rise_ms: tr,
        tau_decay_ms: td,
    });
    // A membrane that stays put: no conductances, so V holds at 50 mV.
    for name in ["g_na", "g_k", "g_l"] {
        let k = net.cell.model.param(name).unwrap();
        net.cell.values[k] = 0.0;
    }
    let mut st = State::at_rest(&net, &[50.0]);
    let g = net.cell.model.gates.len();
    st.vars[g][0] = 0.0;
    st.vars[g + 1][0] = 0.0;
    let (rates, dt) = (rates(&net, Method::ExpMidpoint, 0.01, RatesMode::Exact), 0.01);
    let kernel = Kernel::new(&net, &rates, Method::ExpMidpoint, dt, crate::simd::Simd::Portable);
    let lanes = Lanes::one(&net);
    let mut ws = Workspace::new(&kernel, 1, st.vars.len());
    let mut worst = 0.0f64;
    let zero = [0.0];
    let input = StepInput {
        noise_dv: &zero,
        i_start: &zero,
        i_mid: &zero,
    };
    let t_inf = match rd_gate(&net) {
        Kinetics::InfTau { inf, .. } => inf.at(50.0),
        Kinetics::AlphaBeta { .. } => unreachable!(),
    };
    assert!(t_inf > 0.99, "T(50 mV) = {t_inf}");
    for k in 1..=2000 {
        step(&kernel, &lanes, &mut st, &input, &mut ws);
        let t = k as f64 * dt;
        let exact = t_inf * (1.0 - (td * (-t / td).exp() - tr * (-t / tr).exp()) / (td - tr));
        worst = worst.max((st.s()[0] - exact).abs());
    }
    assert!(worst < 1e-5, "max error {worst}");
}

fn rd_gate(net: &Network) -> Kinetics {
    net.rise_decay.unwrap().gate(&net.synapse)
}

#[test]
fn gap_currents_sum_to_zero_and_pull_voltages_together() {
    use crate::model::Topology;
    let v = [-65.0, -20.0, 10.0, -70.0];
    for topology in [Topology::AllToAll, Topology::Ring] {
        let gap = Coupling::new(&topology, 4, 0.3);
        let mut i = [0.0; 4];
        gap.diffusive(&v, &mut i);
        // Charge conservation: exact up to rounding.
        assert!(i.iter().sum::<f64>().abs() < 1e-12, "{topology:?}: {i:?}");
        // The most depolarised neuron loses current, the most
        // hyperpolarised gains it.
        assert!(i[2] < 0.0 && i[3] > 0.0, "{i:?}");
    }
    // By hand: all-to-all, g = 0.3, neuron 0: 0.3 * (45 + 75 - 5) = 34.5.
    let mut i = [0.0; 4];
    Coupling::new(&Topology::AllToAll, 4, 0.3).diffusive(&v, &mut i);
    assert!((i[0] - 34.5).abs() < 1e-12, "{}", i[0]);
}

#[cfg(target_arch = "x86_64")]
fn simd_ionic_current_matches<const C: usize>(rng: &mut Xoshiro256PlusPlus) {
    use crate::simd::Current;
    use rand::RngExt;
    // Gate 0 with every power from 0 to 6 (the written-out ones and the
    // general loop), gate 1 instantaneous, gate 2 once more, and a leak.
    let mut currents: Vec<Current> = (0..=6)
        .map(|p| Current {
            g: rng.random_range(0.1..150.0),
            e_mv: rng.random_range(-90.0..60.0),
            gates: vec![(0, p), (1, 3), (2, 1)],
        })
        .collect();
    currents.push(Current {
        g: 0.3,
        e_mv: -54.387,
        gates: vec![],
    });
    let instantaneous = [false, true, false];
    let at = 3;
    let vars: Vec<Vec<f64>> = (0..3)
        .map(|_| (0..C + at).map(|_| rng.random::<f64>()).collect())
        .collect();
    let inf: Vec<[f64; C]> = (0..3).map(|_| std::array::from_fn(|_| rng.random::<f64>())).collect();
    let v: [f64; C] = std::array::from_fn(|_| rng.random_range(-100.0..60.0));
    // All 24 factors, then two currents and the leak (all looked up once).
    let few = [currents[0].clone(), currents[4].clone(), currents[7].clone()];
    for currents in [&currents[..], &few[..]] {
        let (mut generic, mut avx2) = ([0.0; C], [0.0; C]);
        ionic_current_generic(&mut generic, &v, currents, &instantaneous, &inf, &vars, at);
        // SAFETY: the caller checked that the CPU runs AVX2 and FMA.
        unsafe { crate::simd::avx2::ionic_current(&mut avx2, &v, currents, &instantaneous, &inf, &vars, at) };
        assert_eq!(avx2.map(f64::to_bits), generic.map(f64::to_bits), "AVX2, C = {C}");
        if crate::simd::simd() == Simd::Avx512 && C.is_multiple_of(8) {
            let mut avx512 = [0.0; C];
            // SAFETY: just checked.
            unsafe { crate::simd::avx512::ionic_current(&mut avx512, &v, currents, &instantaneous, &inf, &vars, at) };
            assert_eq!(avx512.map(f64::to_bits), generic.map(f64::to_bits), "AVX-512, C = {C}");
        }
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
fn the_simd_ionic_currents_give_the_bits_of_the_generic_loop() {
    // The run-level test covers the powers of the built-in models; this
    // one every power up to 6, for AVX2 and (where the CPU has it)
    // AVX-512, at every chunk width, with 24 gate factors: more than the
    // 16 looked up once per chunk.
    if crate::simd::simd() < Simd::Avx2 {
        return;
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    for _ in 0..20 {
        simd_ionic_current_matches::<4>(&mut rng);
        simd_ionic_current_matches::<8>(&mut rng);
        simd_ionic_current_matches::<16>(&mut rng);
        simd_ionic_current_matches::<32>(&mut rng);
    }
}
