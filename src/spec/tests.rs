//! Tests of spec parsing and validation.

use super::*;
use crate::graph::TopologySpec;
use crate::integrate::RatesMode;
use crate::model::RiseDecay;

const MINIMAL: &str = "name = \"t\"\n[time]\nduration_ms = 10.0\n";

fn err(text: &str) -> String {
    ExperimentSpec::parse(text).unwrap_err().to_string()
}

#[test]
fn minimal_spec_gets_the_documented_defaults() {
    let spec = ExperimentSpec::parse(MINIMAL).unwrap();
    assert_eq!(
        (spec.seed, spec.replicates, spec.seed_mode),
        (1, 1, SeedMode::Independent)
    );
    let c = spec.resolve(&[]).unwrap();
    assert_eq!(c.dt_ms, 0.01);
    assert_eq!(c.n_steps, 1000);
    assert_eq!(c.method, Method::ExpMidpoint);
    assert_eq!(c.network.cell.model.name, "hh");
    assert_eq!(c.network.cell.value("g_na"), 120.0);
    assert_eq!(c.rates.mode(), RatesMode::Table);
    assert_eq!(c.network.i_inj, vec![10.0]);
    assert_eq!((c.threshold_mv, c.rearm_mv), (0.0, -20.0));
}

#[test]
fn errors_name_the_key_the_value_and_the_rule() {
    assert_eq!(
        err("name = \"t\"\n[time]\ndt_ms = -0.01\nduration_ms = 10.0\n"),
        "time.dt_ms = -0.01: must be > 0"
    );
    assert_eq!(
        err("name = \"t\"\nseed_mode = \"commn\"\n[time]\nduration_ms = 10.0\n"),
        "seed_mode = \"commn\": must be \"independent\" or \"common\""
    );
    let c = ExperimentSpec::parse("name = \"t\"\nseed_mode = \"common\"\n[time]\nduration_ms = 10.0\n").unwrap();
    assert_eq!(c.seed_mode.name(), "common");
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\ndt = 0.1\n");
    assert!(e.starts_with("time.dt: unknown field `dt`"), "{e}");
    assert!(e.contains("dt_ms"), "should list the allowed keys: {e}");
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\n[noise]\nsigma = \"big\"\n");
    assert!(e.starts_with("noise.sigma: invalid type"), "{e}");
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\n[noise]\nsigma = [1.0, 2.0]\n");
    assert!(
        e.starts_with("noise.sigma: invalid type: sequence")
            && e.ends_with("to sweep it, list its values under [sweep]: \"noise.sigma\" = [...]"),
        "{e}"
    );
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\n[synapse]\nkind = [\"kinetic\"]\n");
    assert!(
        e.starts_with("synapse.kind: invalid type: sequence") && !e.contains("[sweep]"),
        "{e}"
    );
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\n[noise]\nshared = 1.5\n");
    assert_eq!(e, "noise.shared = 1.5: must be between 0 and 1");
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.005\n");
    assert!(
        e.starts_with("time.duration_ms = 10.005: must be a whole number of steps"),
        "{e}"
    );
    let e = err("name = \"t\"\n[network]\nn = 3\n[neuron]\ni_inj = [1, 2]\n[time]\nduration_ms = 10.0\n");
    assert!(
        e.starts_with("neuron.i_inj = [1, 2]: has 2 values but network.n = 3"),
        "{e}"
    );
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\n[integrator]\nmethod = \"rk4\"\n");
    assert!(
        e.contains("integrator.method = \"rk4\": must be one of \"exp-midpoint\""),
        "{e}"
    );
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\nbogus = 1\n");
    assert!(e.starts_with("time.bogus: unknown field"), "{e}");
    let e = err("name = \"t\"\nreplicate = 3\n[time]\nduration_ms = 10.0\n");
    assert!(e.contains("unknown field `replicate`"), "{e}");
    assert!(err("name = \"t\"\n").starts_with("time.duration_ms: is required"));
    assert!(err("name = \"a/b\"\n[time]\nduration_ms = 10.0\n")
        .starts_with("name = \"a/b\": must be a plain directory name"));
    assert!(err("name = = 3").starts_with("not valid TOML"));
}

#[test]
fn sweep_axes_keep_their_written_order_and_expand_generators() {
    let spec = ExperimentSpec::parse(
        "name = \"t\"\n[time]\nduration_ms = 10.0\n[sweep]\n\"noise.sigma\" = { linspace = [0.0, 4.0, 5] }\n\"network.strength\" = [0.1, 0.0]\n\"neuron.i_inj\" = { logspace = [1.0, 100.0, 3] }\n",
    )
    .unwrap();
    let keys: Vec<&str> = spec.axes.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys, ["noise.sigma", "network.strength", "neuron.i_inj"]);
    assert_eq!(spec.axes[0].values, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
    assert_eq!(spec.axes[1].values, vec![0.1, 0.0]);
    let g = &spec.axes[2].values;
    assert_eq!(g[0], 1.0);
    assert!((g[1] - 10.0).abs() < 1e-12, "geometric, not exponents: {g:?}");
    assert_eq!(g[2], 100.0);
    assert_eq!(spec.n_points(), 30);
    assert_eq!(spec.axes[1].column(), "network_strength");
}

#[test]
fn swept_values_pass_the_same_validation_as_written_ones() {
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\n[sweep]\n\"noise.sigma\" = [-1.0, 1.0]\n");
    assert_eq!(e, "at sweep point noise.sigma = -1: noise.sigma = -1: must be >= 0");
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\n[sweep]\n\"noise.sigm\" = [1.0]\n");
    assert!(
        e.starts_with("at sweep point noise.sigm = 1: noise.sigm: unknown field `sigm`"),
        "{e}"
    );
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\n[sweep]\nseed = [1, 2]\n");
    assert!(
        e.starts_with("sweep.\"seed\": seed cannot be swept: sweeps vary the model's numbers"),
        "{e}"
    );
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\n[sweep]\n\"integrator.tables\" = [0, 1]\n");
    assert!(e.contains("integrator.tables cannot be swept"), "{e}");
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\n[sweep]\n\"nosie.sigma\" = [1.0]\n");
    assert!(
        e.starts_with("sweep.\"nosie.sigma\": a swept key is \"section.key\""),
        "{e}"
    );
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\n[sweep]\n\"noise.sigma\" = [1.0, 2.0, 1.0]\n");
    assert!(e.contains("1 appears twice"), "{e}");
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\n[sweep]\n\"noise.sigma\" = { logspace = [0.0, 1.0, 3] }\n");
    assert!(e.contains("logspace needs start > 0"), "{e}");
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\n[sweep]\n\"noise.sigma\" = []\n");
    assert!(e.contains("needs at least one value"), "{e}");
}

#[test]
fn network_size_can_be_swept_as_a_whole_number() {
    let spec =
        ExperimentSpec::parse("name = \"t\"\n[time]\nduration_ms = 10.0\n[sweep]\n\"network.n\" = [2, 4]\n").unwrap();
    assert_eq!(spec.resolve(&[4.0]).unwrap().network.n(), 4);
    let e = spec.resolve(&[2.5]).unwrap_err().to_string();
    assert!(e.contains("network.n: invalid type: floating point"), "{e}");
}

#[test]
fn matrix_topology_must_be_square_of_size_n() {
    let e =
        err("name = \"t\"\n[time]\nduration_ms = 10.0\n[network]\nn = 3\ntopology = { matrix = [[0, 1], [1, 0]] }\n");
    assert!(
        e.starts_with("network.topology.matrix: must be n x n with network.n = 3"),
        "{e}"
    );
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\n[network]\ntopology = \"mesh\"\n");
    assert!(e.starts_with("network.topology = \"mesh\": must be"), "{e}");
}

#[test]
fn random_topologies_need_their_parameters() {
    let base = "name = \"t\"\n[time]\nduration_ms = 10.0\n[network]\nn = 10\n";
    let e = err(&format!("{base}topology = \"random\"\n"));
    assert!(e.starts_with("network.p: is required by this topology"), "{e}");
    let e = err(&format!("{base}topology = \"random\"\np = 1.5\n"));
    assert_eq!(e, "network.p = 1.5: must be between 0 and 1");
    let e = err(&format!("{base}topology = \"ring\"\np = 0.5\n"));
    assert!(
        e.starts_with("network.p: is not used by network.topology = \"ring\""),
        "{e}"
    );
    let e = err(&format!("{base}topology = \"random\"\np = 0.5\nk = 4\n"));
    assert!(
        e.starts_with("network.k: is not used by network.topology = \"random\""),
        "{e}"
    );
    let e = err(&format!("{base}p = 0.5\n"));
    assert!(
        e.starts_with("network.p: is not used by network.topology = \"all-to-all\""),
        "{e}"
    );
    let matrix = format!("[{}]", ["[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"; 10].join(", "));
    let e = err(&format!("{base}topology = {{ matrix = {matrix} }}\nk = 2\n"));
    assert!(
        e.starts_with("network.k: is not used by network.topology = { matrix = ... }"),
        "{e}"
    );
    let e = err(&format!("{base}[gap]\ng = 0.1\np = 0.3\n"));
    assert!(e.starts_with("gap.p: is used only with gap.topology"), "{e}");
    let e = err(&format!("{base}topology = \"small-world\"\nk = 3\np = 0.1\n"));
    assert!(e.starts_with("network.k = 3: must be even"), "{e}");
    let e = err(&format!("{base}topology = {{ matrix_file = \"/nonexistent.csv\" }}\n"));
    assert!(
        e.starts_with("network.topology.matrix_file = \"/nonexistent.csv\": cannot read it"),
        "{e}"
    );
    let e = err(&format!("{base}[neuron]\ni_inj = {{ normal = [10.0, -1.0] }}\n"));
    assert!(
        e.starts_with("neuron.i_inj = ") && e.ends_with("normal = [mean, sd] needs sd >= 0"),
        "{e}"
    );
    let e = err(&format!("{base}[neuron]\ni_inj = {{ uniform = [12.0, 8.0] }}\n"));
    assert!(e.ends_with("uniform = [lo, hi] needs lo <= hi"), "{e}");
    let spec = ExperimentSpec::parse(&format!(
        "{base}topology = \"small-world\"\nk = 4\np = 0.2\nstrength = 0.1\n"
    ))
    .unwrap();
    let c = spec.resolve(&[]).unwrap();
    assert!(matches!(c.graph.topology, TopologySpec::SmallWorld { k: 4, .. }));
    // The same spec resolves to the same graph (one graph per experiment).
    assert_eq!(c.network, spec.resolve(&[]).unwrap().network);
}

#[test]
fn matrix_file_is_read_as_csv() {
    let dir = std::env::temp_dir().join(format!("spikesweep-matrix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.csv");
    std::fs::write(&path, "# inputs of neuron 0, then 1\n0, 1\n0.5 0\n").unwrap();
    let text = format!(
        "name = \"t\"\n[time]\nduration_ms = 10.0\n[network]\nn = 2\nstrength = 2.0\ntopology = {{ matrix_file = {:?} }}\n",
        path.display().to_string()
    );
    let c = ExperimentSpec::parse(&text).unwrap().resolve(&[]).unwrap();
    let mut drive = [0.0; 2];
    c.network.coupling.drive(&[1.0, 1.0], &mut drive);
    assert_eq!(drive, [2.0, 1.0]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn synapse_keys_belong_to_their_kind() {
    let base = "name = \"t\"\n[time]\nduration_ms = 10.0\n[synapse]\n";
    let e = err(&format!("{base}tau_rise_ms = 1.0\n"));
    assert!(
        e.starts_with("synapse.tau_rise_ms: does not apply to kind = \"kinetic\""),
        "{e}"
    );
    let e = err(&format!("{base}kind = \"double-exp\"\nv_rev_mv = 0.0\n"));
    assert!(
        e.contains("synapse.v_rev_mv: does not apply to kind = \"double-exp\"") && e.contains("e_rev_mv"),
        "{e}"
    );
    let e = err(&format!("{base}kind = \"ampa\"\n"));
    assert!(e.contains("\"double-exp\""), "{e}");
    let c = ExperimentSpec::parse(&format!(
        "{base}kind = \"double-exp\"\ne_rev_mv = -80.0\ntau_decay_ms = 8.0\n"
    ))
    .unwrap()
    .resolve(&[])
    .unwrap();
    assert_eq!(
        c.network.rise_decay,
        Some(RiseDecay {
            tau_rise_ms: 0.5,
            tau_decay_ms: 8.0
        })
    );
    assert_eq!(c.network.synapse.v_rev_mv, -80.0);
}

#[test]
fn rates_are_tabulated_by_default_and_the_keys_of_0_2_say_what_replaced_them() {
    let base = "name = \"t\"\n[time]\nduration_ms = 10.0\n[integrator]\n";
    let resolve = |text: &str| ExperimentSpec::parse(text).unwrap().resolve(&[]).unwrap();
    assert_eq!(resolve(base).rates.mode(), RatesMode::Table);
    assert_eq!(
        resolve(&format!("{base}rates = \"exact\"\n")).rates.mode(),
        RatesMode::Exact
    );
    // Every method takes tables (euler's hold 1/tau instead of decays).
    assert_eq!(
        resolve(&format!("{base}method = \"euler\"\n")).rates.mode(),
        RatesMode::Table
    );
    for old in ["tables = true", "fast = true"] {
        let e = err(&format!("{base}{old}\n"));
        assert!(e.contains("was removed in spikesweep 0.3"), "{e}");
        assert!(
            e.contains("integrator.rates = \"table\" (the default) or \"exact\""),
            "{e}"
        );
    }
    let e = err(&format!("{base}rates = \"tabled\"\n"));
    assert!(e.starts_with("integrator.rates = \"tabled\": must be \"table\""), "{e}");
    // Points with the same rates share one table (a sweep over g_na).
    let plan = crate::plan::Plan::new(
        ExperimentSpec::parse(&format!("{base}[sweep]\n\"neuron.g_na\" = [100, 120]\n")).unwrap(),
    )
    .unwrap();
    assert!(Arc::ptr_eq(&plan.points[0].config.rates, &plan.points[1].config.rates));
}

#[test]
fn neuron_keys_are_the_models_parameters() {
    let base = "name = \"t\"\n[time]\nduration_ms = 10.0\n[neuron]\n";
    let c = ExperimentSpec::parse(&format!("{base}model = \"wang-buzsaki\"\nphi = 3.0\ng_na = 30\n"))
        .unwrap()
        .resolve(&[])
        .unwrap();
    assert_eq!((c.network.cell.value("phi"), c.network.cell.value("g_na")), (3.0, 30.0));
    let e = err(&format!("{base}g_kd = 5.0\n"));
    assert!(
        e.starts_with("neuron.g_kd: is not a key of [neuron] nor a parameter of model \"hh\""),
        "{e}"
    );
    assert!(e.contains("c_m, g_na, g_k, g_l, e_na_mv"), "{e}");
    assert_eq!(
        err(&format!("{base}g_na = -1.0\n")),
        "neuron.g_na = -1: is a conductance (the g of a current): must be >= 0"
    );
    assert_eq!(
        err(&format!("{base}c_m = 0\n")),
        "neuron.c_m = 0: the membrane capacitance must be > 0"
    );
    // A value that makes a rate negative is caught at its point.
    let e = err(&format!(
        "{base}model = \"wang-buzsaki\"\n[sweep]\n\"neuron.phi\" = [-1.0]\n"
    ));
    assert!(e.starts_with("at sweep point neuron.phi = -1: neuron: with these values of its parameters (phi), model \"wang-buzsaki\" breaks a rule at gates.h.alpha"), "{e}");
    let e = err(&format!("{base}model = \"hhh\"\n"));
    assert!(e.starts_with("neuron.model = \"hhh\": must be a built-in model (\"hh\", \"wang-buzsaki\", \"traub-miles\", \"pospischil-rs\")"), "{e}");
    let e = err(&format!("{base}model = \"no/such/file.toml\"\n"));
    assert!(
        e.starts_with("neuron.model = \"no/such/file.toml\": cannot read the model file: "),
        "{e}"
    );
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\n[sweep]\n\"neuron.model\" = [1, 2]\n");
    assert!(e.contains("neuron.model cannot be swept"), "{e}");
    let e = err("name = \"t\"\n[time]\nduration_ms = 10.0\n[noise]\nna_channels_per_um2 = 30\n");
    assert!(e.contains("write neuron.na_channels_per_um2"), "{e}");
}

#[test]
fn a_model_file_is_read_relative_to_the_spec_and_its_errors_name_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("cells")).unwrap();
    let hh = crate::model::neuron::BUILT_IN[0].1;
    std::fs::write(
        dir.path().join("cells/mine.toml"),
        hh.replace("name = \"hh\"", "name = \"mine\""),
    )
    .unwrap();
    let text = "name = \"t\"\n[time]\nduration_ms = 10.0\n[neuron]\nmodel = \"cells/mine.toml\"\n";
    let spec = ExperimentSpec::parse_in(text, dir.path()).unwrap();
    assert_eq!(spec.model.name, "mine");
    assert_eq!(spec.units("neuron.g_na").as_deref(), Some("mS/cm^2"));
    // The stored text stands in for the file.
    let stored = ExperimentSpec::parse_stored(text, &spec.model.text).unwrap();
    assert_eq!(stored.model.text, spec.model.text);
    std::fs::write(
        dir.path().join("cells/mine.toml"),
        hh.replace("gates = { n = 4 }", "gates = { m = 1 }"),
    )
    .unwrap();
    let e = ExperimentSpec::parse_in(text, dir.path()).unwrap_err().to_string();
    let path = dir.path().join("cells/mine.toml");
    assert_eq!(
        e,
        format!(
            "model file {}: gates.n: is used by no current: add it to a current's gates, or remove it",
            path.display()
        )
    );
}

#[test]
fn a_step_count_beyond_reason_is_an_error_naming_dt() {
    // 1e-300 ms steps: 1e301 steps, which as u64 saturated to 1.8e19
    // and ran "forever" (found by trying it).
    let e = err("name = \"t\"\n[time]\ndt_ms = 1e-300\nduration_ms = 10.0\n");
    assert!(e.starts_with("time.dt_ms = 1e-300: gives 1.000e301 steps"), "{e}");
    assert!(e.contains("raise time.dt_ms or shorten time.duration_ms"), "{e}");
    // 1e12 steps is the most accepted.
    let ok = ExperimentSpec::parse("name = \"t\"\n[time]\ndt_ms = 0.01\nduration_ms = 1e10\n").unwrap();
    assert_eq!(ok.resolve(&[]).unwrap().n_steps, 1_000_000_000_000);
}
