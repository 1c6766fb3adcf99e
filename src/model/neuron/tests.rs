//! Unit tests of model files: the built-ins, and one error per class of
//! bad file.

use super::*;

const HH: &str = include_str!("../../../models/hh.toml");

fn bad(text: &str) -> String {
    ModelDef::parse(text, "my.toml").unwrap_err().to_string()
}

#[test]
fn every_built_in_model_parses_and_rests_where_its_paper_says() {
    // HH's e_l = -54.387 is chosen so that the ionic current at the
    // gates' steady state vanishes at -65.0 mV (to 0.01 uA/cm^2).
    let hh = Cell::defaults(Arc::new(ModelDef::built_in("hh").unwrap()));
    let i = hh.ionic_current(-65.0, &hh.gates_at_rest(-65.0));
    assert!(i.abs() < 0.01, "hh: I_ion(-65) = {i}");
    // The others' resting potentials (the root of the steady-state I-V
    // curve, by bisection) lie near their leak reversals: WB about -64
    // mV (Wang & Buzsaki 1996), Pospischil's RS cell about -70.
    for (name, lo, hi) in [("wang-buzsaki", -66.0, -62.0), ("pospischil-rs", -72.0, -68.0)] {
        let cell = Cell::defaults(Arc::new(ModelDef::built_in(name).unwrap()));
        let f = |v: f64| cell.ionic_current(v, &cell.gates_at_rest(v));
        // [-80, -60]: below the N-shaped curve's inward sodium hump.
        let (mut a, mut b) = (-80.0, -60.0);
        assert!(f(a) < 0.0 && f(b) > 0.0, "{name}: one root in [-80, -60]");
        for _ in 0..60 {
            let m = 0.5 * (a + b);
            if f(m) < 0.0 {
                a = m
            } else {
                b = m
            }
        }
        assert!((lo..hi).contains(&a), "{name}: rest at {a} mV");
    }
    let tm = ModelDef::built_in("traub-miles").unwrap();
    assert_eq!(tm.gates.len(), 3);
    assert_eq!(ModelDef::built_in("pospischil-rs").unwrap().gates[3].name, "p");
    assert!(ModelDef::built_in("wang-buzsaki").unwrap().gates[0].instantaneous);
    assert!(ModelDef::built_in("nonesuch").is_none());
}

#[test]
fn hh_alpha_m_is_its_limit_at_the_singular_voltage() {
    let cell = Cell::defaults(Arc::new(ModelDef::built_in("hh").unwrap()));
    let Kinetics::AlphaBeta { alpha, .. } = &cell.kinetics()[0] else {
        panic!("alpha/beta")
    };
    // Limits 1.0 (alpha_m at -40) and 0.1 (alpha_n at -55) per ms:
    // exactly, and to the last bit of 0.01 / 0.1 (= 0.09999999999999999).
    assert_eq!(alpha.at(-40.0), 1.0);
    let Kinetics::AlphaBeta { alpha, .. } = &cell.kinetics()[2] else {
        panic!("alpha/beta")
    };
    assert!((alpha.at(-55.0) - 0.1).abs() <= 1.4e-17, "{}", alpha.at(-55.0));
}

#[test]
fn an_unknown_name_in_an_expression_names_file_key_and_the_parameters() {
    let e = bad(&HH.replace("0.07 * exp(-(v + 65) / 20)", "0.07 * exp(-(v + v_shift) / 20)"));
    assert!(
        e.starts_with(
            "model file my.toml: gates.h.alpha = \"0.07 * exp(-(v + v_shift) / 20)\": unknown name `v_shift`"
        ),
        "{e}"
    );
    assert!(e.contains("g_na"), "lists the parameters: {e}");
}

#[test]
fn a_gate_used_by_no_current_is_an_error() {
    let e = bad(&HH.replace("gates = { n = 4 }", "gates = { m = 1 }"));
    assert_eq!(
        e,
        "model file my.toml: gates.n: is used by no current: add it to a current's gates, or remove it"
    );
}

#[test]
fn a_current_naming_a_missing_gate_is_an_error() {
    let e = bad(&HH.replace("gates = { n = 4 }", "gates = { q = 4 }"));
    assert_eq!(
        e,
        "model file my.toml: currents.k.gates.q: names no gate (the gates: m, h, n)"
    );
}

#[test]
fn a_non_finite_rate_is_an_error_naming_the_voltage() {
    // NaN above -100 mV (a square root of a negative number).
    let e = bad(&HH.replace(
        "0.125 * exp(-(v + 65) / 80)",
        "0.125 * exp(-(v + 65) / 80) + sqrt(-v - 100)",
    ));
    assert!(e.starts_with("model file my.toml: gates.n.beta = \"0.125 * exp(-(v + 65) / 80) + sqrt(-v - 100)\": a rate must be finite and >= 0, but it is NaN at V = -99.9"), "{e}");
}

#[test]
fn a_negative_rate_is_an_error() {
    let e = bad(&HH.replace(
        "beta = \"4 * exp(-(v + 65) / 18)\"",
        "beta = \"4 * exp(-(v + 65) / 18) - 1\"",
    ));
    assert!(e.starts_with("model file my.toml: gates.m.beta = \"4 * exp(-(v + 65) / 18) - 1\": a rate must be finite and >= 0, but it is -"), "{e}");
}

#[test]
fn structure_errors_say_what_a_model_file_holds() {
    assert!(bad("name = \"x\"\n[parameters]\n").starts_with("model file my.toml: parameters.c_m: is required"));
    assert!(bad("name = \"x\"\nfoo = 1\n").contains("foo: unknown key"));
    assert!(bad("name = \"x\"\n[parameters]\nc_m = 1.0\n").contains("parameters.c_m = 1.0: must be { value"));
    let e = bad(&HH.replace("gates = { m = 3, h = 1 }", "gates = { m = 2.5, h = 1 }"));
    assert!(
        e.contains("currents.na.gates.m = 2.5: the power of a gate is a whole number"),
        "{e}"
    );
    let e = bad(&HH.replace("g = \"g_na\"", "g = \"g_nax\""));
    assert!(
        e.starts_with("model file my.toml: currents.na.g = \"g_nax\": names no parameter"),
        "{e}"
    );
    let e = bad(&HH.replace("[gates.m]\nalpha", "[gates.m]\ninf = \"0.5\"\nalpha"));
    assert!(
        e.contains("gates.m: give either alpha and beta (1/ms) or inf and tau_ms (ms)"),
        "{e}"
    );
    let e = bad(&HH.replace("c_m = { value = 1.0", "c_m = { value = 0.0"));
    assert!(
        e.contains("parameters.c_m = 0: the membrane capacitance must be > 0"),
        "{e}"
    );
    let e = bad(&HH.replace("g_k = { value = 36.0", "g_k = { value = -1.0"));
    assert!(e.contains("parameters.g_k = -1: is a conductance"), "{e}");
    let e = bad(&HH.replace("[gates.h]", "[gates.v_mv]"));
    assert!(e.contains("gates.v_mv: a gate name"), "{e}");
    let e = bad(&HH.replace(
        "alpha = \"0.07 * exp(-(v + 65) / 20)\"",
        "alpha = \"0.07 * exp(-(v + 65) / 20\"",
    ));
    assert!(
        e.contains("gates.h.alpha = \"0.07 * exp(-(v + 65) / 20\": missing `)` after the argument of exp"),
        "{e}"
    );
}

#[test]
fn inf_tau_gates_are_checked_in_their_own_terms() {
    let text = include_str!("../../../models/pospischil-rs.toml");
    let e = bad(&text.replace(
        "inf = \"1 / (1 + exp(-(v + 35) / 10))\"",
        "inf = \"2 / (1 + exp(-(v + 35) / 10))\"",
    ));
    assert!(
        e.contains("gates.p.inf = \"2 / (1 + exp(-(v + 35) / 10))\": a steady state must lie in [0, 1]"),
        "{e}"
    );
    let e = bad(&text.replace("tau_max_ms = { value = 608.0", "tau_max_ms = { value = -608.0"));
    assert!(e.contains("gates.p.tau_ms"), "{e}");
    assert!(e.contains("a time constant must be finite and > 0"), "{e}");
}
