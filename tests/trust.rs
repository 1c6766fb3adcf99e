//! Run directories you can trust (issue 19): one writer at a time, parts
//! and shards checked before they are used, merges that never leave a
//! mixed directory. Each test reproduces one way a directory used to end
//! "complete" with wrong tables; SPIKESWEEP_TEST_BIN=path runs them against
//! another binary (an older release, to see them fail there).

mod common;

use common::write_spec;
use polars::prelude::*;
use spikesweep::plan::Plan;
use spikesweep::spec::ExperimentSpec;
use spikesweep::store::{read_final, Campaign, Existing};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test: SPIKESWEEP_TEST_BIN, or this build's.
fn bin() -> Command {
    match std::env::var_os("SPIKESWEEP_TEST_BIN") {
        Some(path) => Command::new(path),
        None => common::bin(),
    }
}

fn sw(args: &[&str]) -> Output {
    bin().args(args).output().expect("binary runs")
}

fn ok(args: &[&str]) -> String {
    let o = sw(args);
    assert!(
        o.status.success(),
        "{args:?}: {:?}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// 80 trials of 50 ms: a fraction of a second.
const TINY: &str = r#"
name = "trust"
seed = 11
replicates = 40
[time]
dt_ms = 0.02
duration_ms = 50.0
transient_ms = 10.0
[network]
n = 2
strength = 0.1
[noise]
sigma = 2.0
[sweep]
"noise.sigma" = [1.0, 3.0]
"#;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A temporary directory with TINY (or `text`) as spec.toml.
fn setup(text: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_spec(tmp.path(), text);
    (tmp, spec)
}

/// The tables of a directory, all columns but wall_ms.
fn tables(dir: &Path, names: &[&str]) -> Vec<DataFrame> {
    names
        .iter()
        .map(|t| {
            let df = read_final(dir, t).unwrap_or_else(|e| panic!("{}/{t}: {e}", dir.display()));
            df.drop("wall_ms").unwrap_or(df)
        })
        .collect()
}

const ALL: [&str; 4] = ["trials", "neurons", "spikes", "summary"];

fn assert_same_tables(a: &Path, b: &Path) {
    for (t, (x, y)) in ALL.iter().zip(tables(a, &ALL).into_iter().zip(tables(b, &ALL))) {
        assert!(
            x.equals_missing(&y),
            "{t} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

/// Commits the first part of TINY into `dir` through the library and stops
/// (as a killed run leaves it): 64 of 80 trials in one part.
fn one_part(dir: &Path) {
    let plan = Plan::new(ExperimentSpec::parse(TINY).unwrap()).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let mut c = Campaign::open(&plan, dir, None, Existing::Refuse).unwrap();
    let parts = dir.join("parts");
    let stop = || std::fs::read_dir(&parts).unwrap().count() > 0;
    c.run(&pool, 1, &|_| {}, &|_| {}, &stop).unwrap();
    assert_eq!(c.written(), 64);
}

/// The committed part's files in `dir/parts`.
fn part_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("parts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn a_second_process_on_a_live_run_directory_is_refused_and_the_first_stays_exact() {
    // About 2 s on one thread: long enough to be caught running.
    let text = TINY
        .replace("replicates = 40", "replicates = 200")
        .replace("duration_ms = 50.0", "duration_ms = 1000.0");
    let (tmp, spec) = setup(&text);
    let clean = tmp.path().join("clean");
    ok(&["run", p(&spec), "--out", p(&clean), "--quiet"]);
    let out = tmp.path().join("out");
    let first = bin()
        .args(["run", p(&spec), "--out", p(&out), "--quiet", "--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = first.id();
    let t = Instant::now();
    while !out.join("spec.toml").exists() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let second = sw(&["run", p(&spec), "--out", p(&out), "--resume", "--quiet"]);
    let first = first.wait_with_output().unwrap();
    // The second is refused at once, naming who holds the directory.
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    let err = stderr(&second);
    assert!(err.contains(&format!("pid {pid} on ")), "{err}");
    assert!(err.contains("in use by another spikesweep process"), "{err}");
    // The first is untouched by it: its tables are an uninterrupted run's.
    assert!(first.status.success(), "{}", stderr(&first));
    assert_same_tables(&clean, &out);
}

/// Runs TINY (`text`) as `n` shards into `out`.
fn shards(spec: &Path, out: &Path, n: u32) {
    for k in 0..n {
        ok(&[
            "run",
            p(spec),
            "--out",
            p(out),
            "--quiet",
            "--shard",
            &format!("{k}/{n}"),
        ]);
    }
}

/// Merge must fail with exit 2, naming `shard` and `check`, and write no
/// final table.
fn assert_merge_refused(out: &Path, shard: &str, check: &str) {
    let r = sw(&["merge", p(out)]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(err.contains(shard) && err.contains(check), "{err}");
    assert!(!out.join("manifest.toml").exists(), "nothing merged");
    assert!(!out.join("trials.parquet").exists(), "nothing merged");
}

#[test]
fn merge_refuses_a_copied_shard() {
    let (tmp, spec) = setup(TINY);
    let out = tmp.path().join("out");
    shards(&spec, &out, 3);
    // 1-of-3 copied over 2-of-3: ids 1, 4, 7 twice and 2, 5, 8 never.
    let (one, two) = (out.join("shards/1-of-3"), out.join("shards/2-of-3"));
    std::fs::remove_dir_all(&two).unwrap();
    copy_dir(&one, &two);
    assert_merge_refused(&out, "2-of-3", "manifest.toml is that of shard 1/3");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn merge_refuses_a_spikes_file_from_another_seed() {
    let (tmp, spec) = setup(TINY);
    let out = tmp.path().join("out");
    shards(&spec, &out, 2);
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let spec2 = write_spec(&other, &TINY.replace("seed = 11", "seed = 12"));
    shards(&spec2, &other, 2);
    std::fs::copy(
        other.join("shards/1-of-2/spikes.parquet"),
        out.join("shards/1-of-2/spikes.parquet"),
    )
    .unwrap();
    // Caught by the checksum the manifest keeps of every file.
    assert_merge_refused(&out, "1-of-2", "spikes.parquet: checksum");
}

#[test]
fn merge_refuses_a_shard_holding_a_trial_twice() {
    let (tmp, spec) = setup(TINY);
    let out = tmp.path().join("out");
    shards(&spec, &out, 2);
    // Trial 0 twice in 0-of-2, its manifest updated to match (so only the
    // id check can see it).
    let shard = out.join("shards/0-of-2");
    let path = shard.join("trials.parquet");
    let df = read_final(&shard, "trials").unwrap();
    let mut doubled = df.slice(0, 1).vstack(&df).unwrap();
    let stored = spikesweep::output::stored_spec(&path).unwrap();
    spikesweep::output::write_parquet(&path, &mut doubled, spikesweep::output::metadata(&stored, "trials")).unwrap();
    let sum = spikesweep::store::checksum_file(&path).unwrap();
    let manifest = shard.join("manifest.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut m: spikesweep::store::Manifest = toml::from_str(&text).unwrap();
    // (A manifest without checksums, as 0.3.0 wrote, is left as it is.)
    if let Some(trials) = m.files.get_mut("trials") {
        trials.xxh3 = sum;
        std::fs::write(&manifest, m.to_toml()).unwrap();
    }
    assert_merge_refused(&out, "0-of-2", "trial 0 appears more than once");
}

#[test]
fn merge_refuses_a_shard_missing_a_file_and_writes_nothing() {
    let (tmp, spec) = setup(TINY);
    let out = tmp.path().join("out");
    shards(&spec, &out, 2);
    std::fs::remove_file(out.join("shards/1-of-2/neurons.parquet")).unwrap();
    assert_merge_refused(&out, "1-of-2", "neurons.parquet is missing");
}

/// `out` holds a complete merge of TINY; the shards are then replaced by
/// those of TINY with another seed. Returns (tmp, saved copy of the first
/// merge's tables).
fn merged_then_other_shards() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (tmp, spec) = setup(TINY);
    let out = tmp.path().join("out");
    shards(&spec, &out, 2);
    ok(&["merge", p(&out)]);
    let saved = tmp.path().join("saved");
    copy_dir(&out, &saved);
    std::fs::remove_dir_all(out.join("shards")).unwrap();
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let spec2 = write_spec(&other, &TINY.replace("seed = 11", "seed = 12"));
    shards(&spec2, &out, 2);
    (tmp, out, saved)
}

#[test]
fn a_failed_merge_over_an_earlier_merge_leaves_the_earlier_run_whole() {
    let (_tmp, out, saved) = merged_then_other_shards();
    std::fs::remove_file(out.join("shards/1-of-2/spikes.parquet")).unwrap();
    let r = sw(&["merge", p(&out)]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    // Every table and the manifest are still the first merge's: no mix.
    assert_same_tables(&saved, &out);
    let manifest = |d: &Path| std::fs::read_to_string(d.join("manifest.toml")).unwrap();
    assert_eq!(manifest(&saved), manifest(&out));
}

#[test]
fn merge_over_a_complete_run_of_another_spec_needs_force() {
    let (tmp, out, saved) = merged_then_other_shards();
    let r = sw(&["merge", p(&out)]);
    let err = stderr(&r);
    // Refused: the earlier run is another spec's, kept as it was.
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(
        err.contains("complete run of another spec") && err.contains("--force"),
        "{err}"
    );
    assert_same_tables(&saved, &out);
    // With --force the new merge replaces it: the seed-12 run's tables.
    ok(&["merge", p(&out), "--force"]);
    let whole = tmp.path().join("whole");
    ok(&[
        "run",
        p(&tmp.path().join("other/spec.toml")),
        "--out",
        p(&whole),
        "--quiet",
    ]);
    assert_same_tables(&whole, &out);
}

#[test]
fn a_flipped_byte_in_a_committed_part_is_set_aside_and_recomputed_on_resume() {
    let (tmp, spec) = setup(TINY);
    let clean = tmp.path().join("clean");
    ok(&["run", p(&spec), "--out", p(&clean), "--quiet"]);
    let out = tmp.path().join("out");
    one_part(&out);
    // 16 bytes flipped in the middle of the part's spikes file.
    let spikes = part_files(&out)
        .into_iter()
        .find(|f| f.to_string_lossy().ends_with(".spikes.parquet"))
        .unwrap();
    let mut bytes = std::fs::read(&spikes).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&spikes, bytes).unwrap();
    let r = sw(&["run", p(&spec), "--out", p(&out), "--resume", "--quiet"]);
    let err = stderr(&r);
    assert!(r.status.success(), "{err}");
    // Reported by name, moved aside, and its 64 trials computed again.
    let name = spikes
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace(".spikes.parquet", "");
    assert!(err.contains(&name) && err.contains("spikes.parquet: checksum"), "{err}");
    assert!(out
        .join("set-aside")
        .join(format!("{name}.spikes.parquet.bad"))
        .exists());
    assert_same_tables(&clean, &out);
}

#[test]
fn a_part_copied_under_another_name_is_set_aside_on_resume() {
    let (tmp, spec) = setup(TINY);
    let clean = tmp.path().join("clean");
    ok(&["run", p(&spec), "--out", p(&clean), "--quiet"]);
    let out = tmp.path().join("out");
    one_part(&out);
    // The part of trials 0-63 copied as if it held 64-79.
    for f in part_files(&out) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let copy = name.replace("part-0000000000-0000000063", "part-0000000064-0000000079");
        std::fs::copy(&f, out.join("parts").join(copy)).unwrap();
    }
    let r = sw(&["run", p(&spec), "--out", p(&out), "--resume", "--quiet"]);
    let err = stderr(&r);
    assert!(r.status.success(), "{:?} {err}", r.status);
    assert!(
        err.contains("part-0000000064-0000000079") && err.contains("a copied part"),
        "{err}"
    );
    // 80 trials, each once: the copy's trials are not counted twice.
    assert_same_tables(&clean, &out);
}

#[test]
fn a_truncated_final_table_makes_resume_recompute_not_say_complete() {
    let (tmp, spec) = setup(TINY);
    let clean = tmp.path().join("clean");
    ok(&["run", p(&spec), "--out", p(&clean), "--quiet"]);
    let out = tmp.path().join("out");
    ok(&["run", p(&spec), "--out", p(&out), "--quiet"]);
    let spikes = out.join("spikes.parquet");
    let len = std::fs::metadata(&spikes).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&spikes)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let r = sw(&["run", p(&spec), "--out", p(&out), "--resume", "--quiet"]);
    let (stdout, err) = (String::from_utf8_lossy(&r.stdout), stderr(&r));
    assert!(r.status.success(), "{err}");
    // Not "complete": the table is checked, found short, and rebuilt.
    assert!(!stdout.contains("nothing to resume"), "{stdout}");
    assert!(err.contains("spikes.parquet") && err.contains("checksum"), "{err}");
    assert_same_tables(&clean, &out);
}

#[test]
fn a_changed_model_file_is_another_spec_for_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let model = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/hh.toml")).unwrap();
    std::fs::write(tmp.path().join("cell.toml"), &model).unwrap();
    let text = TINY.replace("[network]", "[neuron]\nmodel = \"cell.toml\"\n[network]");
    let spec = write_spec(tmp.path(), &text);
    let out = tmp.path().join("out");
    ok(&["run", p(&spec), "--out", p(&out), "--quiet"]);
    // Same spec text, another model: the finished run is not this spec's.
    std::fs::write(
        tmp.path().join("cell.toml"),
        model.replace("value = 120.0", "value = 110.0"),
    )
    .unwrap();
    let r = sw(&["run", p(&spec), "--out", p(&out), "--resume", "--quiet"]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(err.contains("another neuron model"), "{err}");
}

#[test]
fn force_says_that_it_deletes_the_earlier_run_first() {
    let (tmp, spec) = setup(TINY);
    let out = tmp.path().join("out");
    ok(&["run", p(&spec), "--out", p(&out), "--quiet"]);
    let r = sw(&["run", p(&spec), "--out", p(&out), "--quiet", "--force"]);
    // Plainly, on stderr, before anything runs.
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("--force: deleted the earlier run"),
        "{}",
        stderr(&r)
    );
}

#[test]
fn merge_refuses_a_shard_that_is_still_being_written() {
    let (tmp, spec) = setup(TINY);
    let out = tmp.path().join("out");
    shards(&spec, &out, 2);
    // A requeued job holding shard 1-of-2 (here: this process, by its lock).
    let held = spikesweep::store::DirLock::acquire(&out.join("shards/1-of-2")).unwrap();
    let r = sw(&["merge", p(&out)]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(
        err.contains("1-of-2") && err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert!(!out.join("manifest.toml").exists(), "nothing merged");
    drop(held);
    ok(&["merge", p(&out)]);
}

#[test]
fn summarize_keeps_a_complete_run_complete() {
    // Not a bug of 0.3.0: summarize rewrites a table the manifest checks,
    // so it must update the manifest's record of it.
    let (tmp, spec) = setup(TINY);
    let out = tmp.path().join("out");
    ok(&["run", p(&spec), "--out", p(&out), "--quiet"]);
    ok(&["summarize", p(&out)]);
    let resumed = ok(&["run", p(&spec), "--out", p(&out), "--resume", "--quiet"]);
    assert!(resumed.contains("nothing to resume"), "{resumed}");
}
