//! A seeded spec fuzzer (issue 19): the shipped experiments, mutated
//! (wrong types, huge, negative and non-finite numbers, missing and
//! unknown keys, huge sweeps, broken text), through `plan` and, for every
//! tenth (made small first), `run`. Every outcome must be exit 0 or 2 within the time
//! limit: never a panic (101), an abort (134) or a hang; and exit 2 leaves
//! no output directory.
//!
//! `SPIKESWEEP_FUZZ_SEED` and `SPIKESWEEP_FUZZ_CASES` change the seed
//! (default 19) and the number of cases (default 300); a failure prints the
//! seed, the case and the spec to reproduce it.

mod common;

use common::bin;
use rand::{Rng, RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};
use toml::{Table, Value};

/// Longest a `plan` may take (a slow CI machine included; the largest
/// grids the mutations make within the limits take about 3 s here).
const PLAN_LIMIT: Duration = Duration::from_secs(60);
/// Longest a `run` of a small spec may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// Every this many cases, the spec is made small first, mutated once,
/// and run too when `plan` accepts it.
const RUN_EVERY: usize = 10;
/// Runs are tried only below this much work (neuron-steps, from `plan`):
/// about a second on one thread.
const RUN_MAX_WORK: f64 = 2e7;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The binary for at most `limit`; None if it had to be killed. Output goes
/// to files, so a chatty child never blocks on a full pipe.
fn within(args: &[&str], cwd: &Path, limit: Duration) -> Option<Output> {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut child = bin()
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    Some(Output {
        status,
        stdout: read(out),
        stderr: read(err),
    })
}

/// Every key path of a table, sections included ("time", "time.dt_ms").
fn paths(table: &Table, prefix: &[String], out: &mut Vec<Vec<String>>) {
    for (k, v) in table {
        let mut p = prefix.to_vec();
        p.push(k.clone());
        out.push(p.clone());
        if let Value::Table(t) = v {
            paths(t, &p, out);
        }
    }
}

fn parent_of<'a>(table: &'a mut Table, path: &[String]) -> Option<&'a mut Table> {
    let mut t = table;
    for k in &path[..path.len() - 1] {
        t = match t.get_mut(k) {
            Some(Value::Table(next)) => next,
            _ => return None,
        };
    }
    Some(t)
}

/// A value that is wrong in one of many ways.
fn odd_value(rng: &mut impl Rng) -> Value {
    let values = [
        Value::String("NaN".into()),
        Value::String("".into()),
        Value::String("x".repeat(300)),
        Value::Float(f64::NAN),
        Value::Float(f64::INFINITY),
        Value::Float(f64::NEG_INFINITY),
        Value::Float(-1.0),
        Value::Float(0.0),
        Value::Float(-0.0),
        Value::Float(1e300),
        Value::Float(1e-300),
        Value::Float(5e-324),
        Value::Integer(0),
        Value::Integer(-1),
        Value::Integer(i64::MAX),
        Value::Integer(i64::MIN),
        Value::Integer(4_294_967_296),
        Value::Integer(1_000_000_000),
        Value::Integer(100_001),
        Value::Boolean(true),
        Value::Array(vec![]),
        Value::Array(vec![Value::Float(1.0), Value::String("a".into())]),
        Value::Array(vec![Value::Float(f64::NAN); 3]),
        Value::Table(Table::new()),
        Value::String("/dev/zero".into()),
        Value::String("../../../../etc/passwd".into()),
    ];
    values[rng.random_range(0..values.len())].clone()
}

/// A sweep axis that is huge, odd or broken.
fn odd_axis(rng: &mut impl Rng) -> Value {
    let gen = |kind: &str, a: Value, b: Value, n: Value| {
        let mut t = Table::new();
        t.insert(kind.into(), Value::Array(vec![a, b, n]));
        Value::Table(t)
    };
    match rng.random_range(0..9) {
        0 => gen("linspace", 0.0.into(), 1.0.into(), Value::Integer(i64::MAX)),
        1 => gen("linspace", 0.0.into(), 1.0.into(), Value::Integer(100_000_000_000)),
        2 => gen(
            "linspace",
            0.0.into(),
            1.0.into(),
            // Small, or over the 1e5-point limit: a grid just under it
            // takes a while to validate (0.2 ms a point), which is no failure.
            Value::Integer(if rng.random_bool(0.5) {
                rng.random_range(1..100)
            } else {
                rng.random_range(100_001..5_000_000)
            }),
        ),
        3 => gen("logspace", (-1.0).into(), 1.0.into(), Value::Integer(3)),
        4 => gen("linspace", (-1e308).into(), 1e308.into(), Value::Integer(3)),
        5 => gen(
            "logspace",
            1e-300.into(),
            1e300.into(),
            Value::Integer(rng.random_range(1..200)),
        ),
        // Past 300 values, repeats.
        6 => Value::Array((0..rng.random_range(0..400)).map(|i| Value::Integer(i % 300)).collect()),
        7 => gen("geomspace", 1.0.into(), 2.0.into(), Value::Integer(3)),
        _ => odd_value(rng),
    }
}

/// One mutation of a parsed spec.
fn mutate(table: &mut Table, rng: &mut impl Rng) {
    let mut all = Vec::new();
    paths(table, &[], &mut all);
    match rng.random_range(0..8) {
        // Replace a key's value with an odd one.
        0 | 1 if !all.is_empty() => {
            let path = &all[rng.random_range(0..all.len())];
            if let Some(t) = parent_of(table, path) {
                t.insert(path.last().unwrap().clone(), odd_value(rng));
            }
        }
        // Remove a key (or a whole section).
        2 if !all.is_empty() => {
            let path = &all[rng.random_range(0..all.len())];
            if let Some(t) = parent_of(table, path) {
                t.remove(path.last().unwrap());
            }
        }
        // An unknown key somewhere.
        3 => {
            let sections = [
                "time",
                "network",
                "noise",
                "synapse",
                "neuron",
                "gap",
                "spikes",
                "integrator",
            ];
            let s = sections[rng.random_range(0..sections.len())];
            let entry = table.entry(s).or_insert_with(|| Value::Table(Table::new()));
            if let Value::Table(t) = entry {
                t.insert("bogus_key".into(), Value::Float(1.0));
            } else {
                table.insert("bogus".into(), Value::Integer(1));
            }
        }
        // A huge or odd sweep axis.
        4 | 5 => {
            let keys = [
                "noise.sigma",
                "network.n",
                "network.strength",
                "time.dt_ms",
                "time.duration_ms",
                "neuron.i_inj",
                "gap.g",
                "synapse.w",
                "seed",
                "noise",
                "neuron.model",
            ];
            let key = keys[rng.random_range(0..keys.len())];
            let sweep = table.entry("sweep").or_insert_with(|| Value::Table(Table::new()));
            if let Value::Table(t) = sweep {
                t.insert(key.into(), odd_axis(rng));
            }
        }
        // Replicates, seed or name at their extremes.
        6 => {
            let key = ["replicates", "seed", "name", "seed_mode"][rng.random_range(0..4)];
            table.insert(key.into(), odd_value(rng));
        }
        // A matrix topology, well-formed or not.
        _ => {
            let mut m = Table::new();
            if rng.random_bool(0.5) {
                m.insert("matrix_file".into(), Value::String("/dev/zero".into()));
            } else {
                let row = Value::Array(vec![Value::Float(0.0), odd_value(rng)]);
                m.insert("matrix".into(), Value::Array(vec![row.clone(), row]));
            }
            if let Some(Value::Table(net)) = table.get_mut("network") {
                net.insert("topology".into(), Value::Table(m));
            }
        }
    }
}

/// Damage the text itself: truncate it, or insert a byte-order mark or
/// stray bytes.
fn damage_text(text: &str, rng: &mut impl Rng) -> String {
    let cut = |i: usize| {
        (0..=i.min(text.len()))
            .rev()
            .find(|&j| text.is_char_boundary(j))
            .unwrap_or(0)
    };
    match rng.random_range(0..4) {
        0 => text[..cut(rng.random_range(0..text.len().max(1)))].to_string(),
        1 => format!("\u{feff}{text}"),
        2 => {
            let at = cut(rng.random_range(0..text.len().max(1)));
            format!("{}\u{0}]]{{=\"{}", &text[..at], &text[at..])
        }
        _ => text.replace('=', "=="),
    }
}

/// Shrinks a spec so that it runs in well under a second.
fn make_small(table: &mut Table) {
    table.insert("replicates".into(), Value::Integer(1));
    if let Some(Value::Table(time)) = table.get_mut("time") {
        time.insert("duration_ms".into(), Value::Float(20.0));
        time.remove("transient_ms");
    }
    if let Some(Value::Table(sweep)) = table.get_mut("sweep") {
        for (_, v) in sweep.iter_mut() {
            match v {
                Value::Array(a) => a.truncate(2),
                // { linspace = [a, b, n] } -> n = 2
                Value::Table(g) => {
                    for (_, args) in g.iter_mut() {
                        if let Value::Array(a) = args {
                            if a.len() == 3 {
                                a[2] = Value::Integer(2);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn work_of(plan_stdout: &str) -> Option<f64> {
    let line = plan_stdout.lines().find(|l| l.starts_with("work"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn experiments() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut specs: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    specs.sort();
    assert!(!specs.is_empty());
    specs
}

#[test]
fn mutated_specs_exit_0_or_2_never_panic_abort_or_hang() {
    let seed = env_or("SPIKESWEEP_FUZZ_SEED", 19);
    let cases = env_or("SPIKESWEEP_FUZZ_CASES", 300) as usize;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let specs = experiments();
    let tmp = tempfile::tempdir().unwrap();
    let (mut refused, mut ran) = (0, 0);
    for case in 0..cases {
        let (name, text) = &specs[rng.random_range(0..specs.len())];
        let will_run = case % RUN_EVERY == 0;
        let mut table: Table = text.parse().unwrap();
        if will_run {
            make_small(&mut table);
        }
        let mutations = if will_run { 1 } else { rng.random_range(1..4) };
        for _ in 0..mutations {
            mutate(&mut table, &mut rng);
        }
        let mut spec = toml::to_string(&table).unwrap();
        if !will_run && rng.random_bool(0.1) {
            spec = damage_text(&spec, &mut rng);
        }
        let cwd = tmp.path().join(format!("case{case}"));
        std::fs::create_dir(&cwd).unwrap();
        let file: PathBuf = cwd.join("spec.toml");
        std::fs::write(&file, &spec).unwrap();
        let what = || format!("seed {seed}, case {case}, from {name}:\n{spec}");

        let o = within(&["plan", "spec.toml"], &cwd, PLAN_LIMIT)
            .unwrap_or_else(|| panic!("plan ran past {PLAN_LIMIT:?}: {}", what()));
        let (code, stderr) = (o.status.code(), String::from_utf8_lossy(&o.stderr));
        assert!(
            matches!(code, Some(0) | Some(2)),
            "plan exited {:?}: {stderr}\n{}",
            o.status,
            what()
        );
        assert!(!stderr.contains("panicked"), "{stderr}\n{}", what());
        assert_eq!(
            std::fs::read_dir(&cwd).unwrap().count(),
            1,
            "plan wrote something: {}",
            what()
        );
        if code == Some(2) {
            assert!(stderr.starts_with("error: "), "{stderr}\n{}", what());
            refused += 1;
            continue;
        }
        let small = work_of(&String::from_utf8_lossy(&o.stdout)).is_some_and(|w| w <= RUN_MAX_WORK);
        if !(will_run && small) {
            continue;
        }
        ran += 1;
        let o = within(
            &["run", "spec.toml", "--out", "out", "--threads", "1", "--quiet"],
            &cwd,
            RUN_LIMIT,
        )
        .unwrap_or_else(|| panic!("run ran past {RUN_LIMIT:?}: {}", what()));
        let stderr = String::from_utf8_lossy(&o.stderr);
        match o.status.code() {
            Some(0) => assert!(cwd.join("out/manifest.toml").exists(), "{}", what()),
            Some(2) => assert!(!cwd.join("out").exists(), "exit 2 left out/: {stderr}\n{}", what()),
            _ => panic!("run exited {:?}: {stderr}\n{}", o.status, what()),
        }
    }
    eprintln!("fuzzed {cases} specs (seed {seed}): {refused} refused with exit 2, {ran} small ones run");
    assert!(
        refused > cases / 4,
        "most mutations should be refused ({refused} of {cases})"
    );
}
