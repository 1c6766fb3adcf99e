//! Unit tests of the expression language: parsing, constant folding,
//! removable singularities and the compiled program.

use super::program::Op;
use super::*;

fn compiled(text: &str, params: &[(&str, f64)]) -> Expr {
    let value = |name: &str| params.iter().find(|(n, _)| *n == name).expect("known").1;
    Expr::parse(text).unwrap().compile(&value)
}

#[test]
fn precedence_and_associativity() {
    let at = |t: &str| compiled(t, &[]).at(2.0);
    assert_eq!(at("1 + 2 * 3"), 7.0);
    assert_eq!(at("-v^2"), -4.0, "^ binds tighter than unary minus");
    assert_eq!(at("2^3^2"), 512.0, "^ groups to the right");
    assert_eq!(at("8 / 2 / 2"), 2.0, "/ groups to the left");
    assert_eq!(at("1 - 2 - 3"), -4.0);
    assert_eq!(at("(1 + v) * 3e-1"), 0.8999999999999999);
    assert_eq!(at("2.5E+1 - .5"), 24.5);
    assert_eq!(at("sqrt(v * 8) + tanh(0) + log(1)"), 4.0);
}

#[test]
fn parse_errors_say_what_and_where() {
    let err = |t: &str| Expr::parse(t).unwrap_err().to_string();
    assert_eq!(
        err("1 +"),
        "the expression ends where a number, name or `(` belongs at character 4"
    );
    assert_eq!(err("exp(v"), "missing `)` after the argument of exp at character 6");
    assert_eq!(
        err("cosh(v)"),
        "unknown function `cosh` (allowed: exp, expm1, log, sqrt, tanh) at character 1"
    );
    assert_eq!(err("v $ 2"), "unexpected `$` at character 3");
    assert_eq!(err("(v + 1"), "missing `)` at character 7");
}

#[test]
fn parameters_are_listed_and_written_in() {
    let e = Expr::parse("g_na * m_x * (v - e_na) + g_na").unwrap();
    assert_eq!(e.params(), vec!["g_na", "m_x", "e_na"]);
    assert_eq!(compiled("g * (v - e)", &[("g", 2.0), ("e", 50.0)]).at(60.0), 20.0);
    // Subtrees without v are folded to one number.
    assert_eq!(
        compiled("exp(a) * 2 + v", &[("a", 0.0)]),
        Expr::Add(Box::new(Expr::Num(2.0)), Box::new(Expr::V))
    );
}

/// The HH alpha_m of Dayan & Abbott, in three spellings an author might use.
const ALPHA_M: [&str; 3] = [
    "0.1 * (v + 40) / (1 - exp(-(v + 40) / 10))",
    "(0.1 * v + 4) / (1 - exp(-0.1 * v - 4))",
    "-0.1 * (v + 40) / (exp(-(v + 40) / 10) - 1)",
];

#[test]
fn removable_singularities_are_finite_and_smooth_at_and_around_the_root() {
    for text in ALPHA_M {
        let e = compiled(text, &[]);
        assert!(format!("{e}").contains("bern"), "{text} -> {e}");
        // Limit: 0.1 * 10 = 1 per ms, exactly.
        assert_eq!(e.at(-40.0), 1.0, "{text}");
        // 1e-12 around the root: slope of x/(1 - e^-x) is 1/2 in x =
        // (v + 40)/10, so 0.05 per mV: within 1e-12 of 1 +- 5e-14.
        for dv in [-1e-12, 1e-12] {
            let want = 1.0 + 0.05 * dv;
            assert!(
                (e.at(-40.0 + dv) - want).abs() < 1e-15,
                "{text} at -40 + {dv}: {}",
                e.at(-40.0 + dv)
            );
        }
        // Away from it, the rate as written (with libm) to 1e-14.
        for v in [-100.0, -60.0, -40.5, -39.5, 0.0, 50.0] {
            let naive = 0.1 * (v + 40.0) / (1.0 - (-(v + 40.0) / 10.0f64).exp());
            assert!((e.at(v) / naive - 1.0).abs() < 1e-14, "{text} at {v}");
        }
    }
}

#[test]
fn traub_miles_forms_with_a_parameter_in_the_root() {
    // am = 0.32 (13 - v + VT) / (exp((13 - v + VT)/4) - 1): root at
    // v = 13 + VT, limit 0.32 * 4 = 1.28.
    let e = compiled("0.32 * (13 - v + vt) / (exp((13 - v + vt) / 4) - 1)", &[("vt", -63.0)]);
    assert!((e.at(-50.0) - 1.28).abs() < 1e-15, "{}", e.at(-50.0));
    // bm = 0.28 (v - VT - 40) / (exp((v - VT - 40)/5) - 1): limit 1.4.
    let e = compiled("0.28 * (v - vt - 40) / (exp((v - vt - 40) / 5) - 1)", &[("vt", -63.0)]);
    assert!((e.at(-23.0) - 1.4).abs() < 1e-15);
}

#[test]
fn a_real_pole_is_not_rewritten() {
    // Numerator and denominator vanish at different voltages: a pole
    // the model checks reject, not something to smooth over.
    let e = compiled("(v + 30) / (1 - exp(-(v + 40) / 10))", &[]);
    assert!(!format!("{e}").contains("bern"));
    assert!(e.at(-40.0).is_infinite());
    // expm1 is still used: accurate near the pole.
    assert!(format!("{e}").contains("expm1"));
}

#[test]
fn the_program_gives_the_bits_of_its_trees_and_shares_subexpressions() {
    let rates = [
        compiled(ALPHA_M[0], &[]),
        compiled("4 * exp(-(v + 65) / 18)", &[]),
        compiled("0.07 * exp(-(v + 65) / 20)", &[]),
        compiled("1 / (1 + exp(-(v + 35) / 10))", &[]),
        compiled("(v + 65)^3 / 1000 + sqrt(abs_v)", &[("abs_v", 4.0)]),
        compiled("(v + 65)^2", &[]),
        // Fused with their factor: a scaled shared base's bern, a sigmoid's
        // numerator and its factor.
        compiled("0.01 * (v + 55) / (1 - exp(-(v + 55) / 10))", &[]),
        compiled("5 * (1 / (1 + exp(-(v + 3) / 10)))", &[]),
    ];
    let program = Program::new(&rates);
    let vs: [f64; 8] = [-100.0, -65.0, -40.0, -39.999, -12.5, 0.0, 30.0, 99.9];
    let mut regs = vec![[0.0; 8]; program.n_registers()];
    program.eval(&vs, &mut regs);
    for (k, e) in optimize(&rates).iter().enumerate() {
        for (l, &v) in vs.iter().enumerate() {
            assert_eq!(
                regs[program.output(k)][l].to_bits(),
                e.at(v).to_bits(),
                "rate {k} at {v}"
            );
        }
    }
    // (v + 65) appears in two rates and is computed once; the linear
    // arguments of the exponentials became a v + b, the constants went
    // into the instructions, and the slopes 1/10 (of alpha_m and the
    // last two) and 1/20 share one exponential (1/18 has its own).
    let plus_65 = program
        .ops
        .iter()
        .filter(|op| matches!(op, Op::AddC(_, c) if *c == 65.0))
        .count();
    assert_eq!(plus_65, 1, "{:?}", program.ops);
    let consts = program.ops.iter().filter(|op| matches!(op, Op::Const(_))).count();
    assert_eq!(consts, 0, "{:?}", program.ops);
    let exps = exponentials(&program);
    assert_eq!(exps, 2, "{:?}", program.ops);
}

#[test]
fn a_factor_or_a_quotient_joins_the_instruction_it_reads() {
    // HH's six rates and the kinetic synapse's (alpha 5, v_half -3, k 8):
    // 21 instructions before fusing; 4 e^x * c, c bern(x), 1 / (1 + c E)
    // and 5 / (1 + c E) are one instruction each now (5 fewer).
    let mut rates: Vec<Expr> = HH_RATES.iter().map(|t| compiled(t, &[])).collect();
    rates.push(compiled("5 * (1 / (1 + exp(-(v + 3) / 8)))", &[]));
    rates.push(compiled("1", &[]));
    let program = Program::new(&rates);
    assert_eq!(program.n_registers(), 16, "{:#?}", program.ops);
    let fused = |op: &Op| {
        matches!(op, Op::ExpAffine(.., m) | Op::CallFromScaledExp(.., m) | Op::CDivAffine(.., m) if *m != 1.0)
            || matches!(op, Op::CDivAffine(..))
    };
    assert_eq!(
        program.ops.iter().filter(|op| fused(op)).count(),
        4,
        "{:#?}",
        program.ops
    );
    // A register read twice is not folded into either reader.
    let shared = Program::new(&[compiled("2 * exp(v / 7)", &[]), compiled("exp(v / 7)", &[])]);
    assert!(
        shared.ops.iter().any(|op| matches!(op, Op::MulC(..))),
        "{:?}",
        shared.ops
    );
    assert_eq!(shared.at(0, 7.0), 2.0 * shared.at(1, 7.0));
}

#[test]
fn powers_multiply_in_a_fixed_order() {
    assert_eq!(powi(3.0, 4), 81.0);
    assert_eq!(powi(2.0, -2), 0.25);
    assert_eq!(pow(2.0, 0.5), 2f64.sqrt());
    assert_eq!(compiled("v^3", &[]).at(-2.0), -8.0);
}

/// Hodgkin-Huxley's six rates (Dayan & Abbott 2001, sec. 5.6).
const HH_RATES: [&str; 6] = [
    "0.1 * (v + 40) / (1 - exp(-(v + 40) / 10))",
    "4 * exp(-(v + 65) / 18)",
    "0.07 * exp(-(v + 65) / 20)",
    "1 / (1 + exp(-(v + 35) / 10))",
    "0.01 * (v + 55) / (1 - exp(-(v + 55) / 10))",
    "0.125 * exp(-(v + 65) / 80)",
];

/// How many exponentials a program computes.
fn exponentials(program: &Program) -> usize {
    program
        .ops
        .iter()
        .filter(|op| matches!(op, Op::Call(Func::Exp, _) | Op::ExpAffine(..)))
        .count()
}

#[test]
fn exponentials_of_whole_multiple_slopes_share_one_base() {
    let rates: Vec<Expr> = HH_RATES.iter().map(|t| compiled(t, &[])).collect();
    let program = Program::new(&rates);
    // Slopes 1/80, 1/20 and 1/10 (x3) per mV are powers 1, 4 and 8 of
    // exp(-v/80); 1/18 is its own: two exponentials instead of six.
    let exps = exponentials(&program);
    assert_eq!(exps, 2, "{:?}", program.ops);
    // Close to each rate evaluated on its own, at every voltage a trial
    // can reach (|V| <= 1000 mV) and around both removable singularities:
    // E^8 carries 8 times E's error (2 ulp), amplified up to 3.4 times in
    // x / (e^x - 1) near the series' edge; and the exponent X = a v + b is
    // rounded differently, which moves e^X by about |X| ulp (|X| <= |V|/10
    // here). Measured: 1.7e-14 at -784 mV, where X = 74.
    let mut vs: Vec<f64> = (0..=20_000).map(|k| -1000.0 + 0.1 * k as f64).collect();
    vs.extend([-40.0, -55.0, -40.0 + 1e-12, -55.0 - 1e-12, -43.5, -36.5, -58.5, -51.5]);
    let mut worst = (0.0f64, 0, 0.0);
    for &v in &vs {
        for (k, e) in rates.iter().enumerate() {
            let (shared, alone) = (program.at(k, v), e.at(v));
            assert!(shared.is_finite() && shared >= 0.0, "rate {k} at {v}: {shared}");
            let ulps = (shared / alone - 1.0).abs() / f64::EPSILON;
            let allowed = 24.0 + v.abs() / 10.0;
            if ulps / allowed > worst.0 {
                worst = (ulps / allowed, k, v);
            }
        }
    }
    assert!(
        worst.0 <= 1.0,
        "{} of the allowed error, rate {} at {} mV",
        worst.0,
        worst.1,
        worst.2
    );
}

#[test]
fn slopes_too_steep_or_not_whole_multiples_keep_their_own_exponential() {
    // 1/18 and 1/80 are not whole multiples; slope 1 per mV could
    // overflow a power within +-1000 mV; 1/2 is 40 times 1/80 (over 16).
    for (texts, expected) in [
        (["exp(v / 18)", "exp(v / 80)"], 2),
        (["exp(v)", "exp(v / 2)"], 2),
        (["exp(v / 2)", "exp(v / 80)"], 2),
        (["exp(-v / 10)", "exp(v / 10)"], 2),
        (["exp(v / 5 + 1)", "exp(v / 10 - 3)"], 1),
    ] {
        let rates: Vec<Expr> = texts.iter().map(|t| compiled(t, &[])).collect();
        let program = Program::new(&rates);
        let exps = exponentials(&program);
        assert_eq!(exps, expected, "{texts:?}");
        for v in [-1000.0, -65.0, 0.0, 1000.0] {
            for (k, e) in rates.iter().enumerate() {
                let (shared, alone) = (program.at(k, v), e.at(v));
                assert!(
                    (shared / alone - 1.0).abs() <= 1e-14,
                    "{} at {v}: {shared} vs {alone}",
                    texts[k]
                );
            }
        }
    }
}

#[test]
fn slopes_one_rounding_apart_share_a_base() {
    // (0.1 + 0.2) / 2 is one ulp above 0.15: the same slope to rounding.
    // The exponent then moves by |a v| ulp at most (4 ulp of a allowed),
    // so the rates agree to (4 |a v| + 2) ulp; 0.3 is twice the base.
    let rates: Vec<Expr> = ["exp(v * 0.15)", "exp(v * (0.1 + 0.2) / 2)", "exp(v * 0.3)"]
        .iter()
        .map(|t| compiled(t, &[]))
        .collect();
    let program = Program::new(&rates);
    let exps = exponentials(&program);
    assert_eq!(exps, 1, "{:?}", program.ops);
    for v in [-1000.0, -65.0, 0.0, 1000.0] {
        for (k, e) in rates.iter().enumerate() {
            let (shared, alone) = (program.at(k, v), e.at(v));
            let allowed = (4.0 * (0.3 * v).abs() + 2.0) * f64::EPSILON;
            assert!(
                (shared / alone - 1.0).abs() <= allowed,
                "rate {k} at {v}: {shared} vs {alone}"
            );
        }
    }
}
