//! Sharded runs, merge, crash safety and resume, through the binary.

mod common;

use common::{assert_same_tables, bin, ok, spikesweep, write_spec, LONG};
use rand::{RngExt, SeedableRng};
use spikesweep::store::read_final;
use std::process::{Command, Stdio};
use std::time::Duration;

const SWEEP: &str = r#"
name = "scale"
seed = 5
replicates = 4
[time]
dt_ms = 0.02
duration_ms = 60.0
transient_ms = 10.0
[network]
n = 3
strength = 0.05
[noise]
sigma = 2.0
[sweep]
"noise.sigma" = [0.0, 3.0, 1e5]
"network.strength" = [0.0, 0.1]
"#;

/// Sends `signal` ("INT", "TERM") to a running `child`.
fn send(child: &std::process::Child, signal: &str) {
    let kill = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success(), "kill -{signal}");
}

/// The tables of a run without `pairs.parquet`.
const TABLES: [&str; 4] = ["trials", "neurons", "spikes", "summary"];

#[test]
fn merged_shards_equal_the_unsharded_run_row_for_row() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write_spec(tmp.path(), SWEEP);
    let s = s.to_str().unwrap();
    let whole = tmp.path().join("whole");
    let sharded = tmp.path().join("sharded");
    ok(&["run", s, "--out", whole.to_str().unwrap()]);
    for k in 0..3 {
        let out = ok(&[
            "run",
            s,
            "--out",
            sharded.to_str().unwrap(),
            "--shard",
            &format!("{k}/3"),
            "--threads",
            "1",
        ]);
        assert!(out.contains(&format!("shards/{k}-of-3")), "{out}");
    }
    // Each shard holds exactly its trials (id mod 3), sorted.
    let t1 = read_final(&sharded.join("shards/1-of-3"), "trials").unwrap();
    let ids: Vec<u32> = t1.column("trial").unwrap().u32().unwrap().iter().flatten().collect();
    assert_eq!(ids, (0..24).filter(|i| i % 3 == 1).collect::<Vec<_>>());
    let out = ok(&["merge", sharded.to_str().unwrap()]);
    assert!(out.contains("merged 24 trials"), "{out}");
    assert_same_tables(&whole, &sharded, &TABLES);
    // The run includes diverged trials (sigma = 1e5): they merge as rows too.
    let status = read_final(&sharded, "trials").unwrap();
    assert_eq!(
        status
            .column("status")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .filter(|s| *s == Some("diverged"))
            .count(),
        8
    );
}

#[test]
fn merge_names_missing_and_unfinished_shards_and_refuses_mixed_specs() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write_spec(tmp.path(), SWEEP);
    let s = s.to_str().unwrap();
    let out = tmp.path().join("out");
    let o = tmp.path().join("out");
    ok(&["run", s, "--out", o.to_str().unwrap(), "--shard", "0/4"]);
    ok(&["run", s, "--out", o.to_str().unwrap(), "--shard", "2/4"]);
    // An unfinished shard: started, never completed (no manifest).
    std::fs::create_dir_all(out.join("shards/3-of-4/parts")).unwrap();
    let r = spikesweep(&["merge", out.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("missing: 1-of-4"), "{err}");
    assert!(err.contains("not finished") && err.contains("3-of-4"), "{err}");
    assert!(!out.join("trials.parquet").exists(), "nothing merged");

    // A shard from another spec is refused by its hash.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let s2 = write_spec(&other, &SWEEP.replace("seed = 5", "seed = 6"));
    std::fs::remove_dir_all(out.join("shards/3-of-4")).unwrap();
    ok(&["run", s, "--out", o.to_str().unwrap(), "--shard", "1/4"]);
    ok(&[
        "run",
        s2.to_str().unwrap(),
        "--out",
        o.to_str().unwrap(),
        "--shard",
        "3/4",
    ]);
    let r = spikesweep(&["merge", out.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("3-of-4 were run from a different spec"), "{err}");

    // A shard of the same spec by another version is refused too.
    std::fs::remove_dir_all(out.join("shards/3-of-4")).unwrap();
    ok(&["run", s, "--out", o.to_str().unwrap(), "--shard", "3/4"]);
    let manifest = out.join("shards/1-of-4/manifest.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let version = format!("spikesweep_version = \"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(text.contains(&version), "{text}");
    std::fs::write(&manifest, text.replace(&version, "spikesweep_version = \"0.0.1\"")).unwrap();
    let r = spikesweep(&["merge", out.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("1-of-4 were run by another spikesweep version"), "{err}");
    assert!(!out.join("trials.parquet").exists(), "nothing merged");
}

#[test]
fn killed_runs_resume_to_the_tables_of_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write_spec(tmp.path(), LONG);
    let s = s.to_str().unwrap();
    let clean = tmp.path().join("clean");
    let started = std::time::Instant::now();
    ok(&["run", s, "--out", clean.to_str().unwrap()]);
    // Kill times scale with this machine's speed: each attempt runs for 10 to
    // 40 % of an uninterrupted run, so the first two are always killed.
    let clean_ms = started.elapsed().as_millis() as u64;

    let out = tmp.path().join("killed");
    let o = out.to_str().unwrap();
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(std::process::id() as u64);
    let mut kills = 0;
    for attempt in 0..4 {
        let mut args = vec!["run", s, "--out", o, "--quiet"];
        if attempt > 0 {
            args.push("--resume");
        }
        let mut child = bin()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let percent = rng.random_range(10..40);
        std::thread::sleep(Duration::from_millis(clean_ms * percent / 100));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL: no chance to clean up
            kills += 1;
        }
        let status = child.wait().unwrap();
        assert!(!status.success() || out.join("manifest.toml").exists());
        // Never a final table without the run being complete.
        if !out.join("manifest.toml").exists() {
            assert!(
                !out.join("trials.parquet").exists(),
                "attempt {attempt}: a final table before completion"
            );
        }
    }
    assert!(kills >= 2, "the test must really kill the run ({kills} kills)");
    // Without --resume the interrupted run is not overwritten.
    if !out.join("manifest.toml").exists() {
        let r = spikesweep(&["run", s, "--out", o]);
        assert_eq!(r.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&r.stderr).contains("--resume"));
    }
    ok(&["run", s, "--out", o, "--resume"]);
    assert_same_tables(&clean, &out, &TABLES);
    assert!(!out.join("parts").exists(), "parts are removed once merged");
}

#[test]
fn sigint_commits_finished_trials_exits_130_and_says_how_to_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write_spec(tmp.path(), LONG);
    let s = s.to_str().unwrap();
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    let child = bin()
        .args(["run", s, "--out", o])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once a first part is committed: trials still running at
    // Ctrl-C are dropped (and computed again on resume).
    let start = std::time::Instant::now();
    let committed = || {
        std::fs::read_dir(out.join("parts"))
            .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".trials.parquet"))))
    };
    while !committed() {
        assert!(start.elapsed() < Duration::from_secs(120), "no part committed in 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    send(&child, "INT");
    let done = child.wait_with_output().unwrap();
    assert_eq!(
        done.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(
        err.contains("interrupted (SIGINT)") && err.contains(&format!("spikesweep run {s} --resume --out {o}")),
        "{err}"
    );
    let parts: Vec<_> = std::fs::read_dir(out.join("parts")).unwrap().flatten().collect();
    assert!(!parts.is_empty(), "finished trials were committed");
    let resumed = ok(&["run", s, "--out", o, "--resume"]);
    assert!(resumed.contains("resuming"), "{resumed}");
    let trials = read_final(&out, "trials").unwrap();
    assert_eq!(trials.height(), 1200);
    let ids: Vec<u32> = trials
        .column("trial")
        .unwrap()
        .u32()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(ids, (0..1200).collect::<Vec<_>>(), "sorted, complete, no duplicates");
}

#[test]
fn sigint_stops_a_long_running_trial_at_once() {
    // One trial of 1e6 ms: hours in this debug build. Ctrl-C must not wait
    // for it (the trial loop asks every 1024 steps), nothing of it is
    // written, and the exit says how to continue. The 30 s bound is far
    // above the few milliseconds it takes and far below the trial's length:
    // it fails only if the trial runs on.
    let tmp = tempfile::tempdir().unwrap();
    let s = write_spec(
        tmp.path(),
        "name = \"one_long\"\n[time]\nduration_ms = 1e6\n[network]\nn = 2\nstrength = 0.1\n[noise]\nsigma = 2.0\n",
    );
    let s = s.to_str().unwrap();
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    let mut child = bin()
        .args(["run", s, "--out", o])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    send(&child, "INT");
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("the run was still going 30 s after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(130));
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(
        err.contains("0 of 1 trials are written") && err.contains("--resume"),
        "{err}"
    );
    assert!(!out.join("trials.parquet").exists());
}

#[test]
fn a_complete_run_is_kept_unless_forced_and_resume_has_nothing_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write_spec(tmp.path(), SWEEP);
    let s = s.to_str().unwrap();
    let out = tmp.path().join("out");
    let o = out.to_str().unwrap();
    ok(&["run", s, "--out", o]);
    let r = spikesweep(&["run", s, "--out", o]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("already holds a complete run; pass --force"));
    assert!(ok(&["run", s, "--out", o, "--resume"]).contains("nothing to resume"));
    ok(&["run", s, "--out", o, "--force"]);
    let r = spikesweep(&["run", s, "--out", o, "--force", "--resume"]);
    assert_eq!(r.status.code(), Some(2), "--force and --resume conflict");
}

#[test]
fn sigterm_is_handled_like_sigint_with_exit_143() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write_spec(tmp.path(), LONG);
    let out = tmp.path().join("out");
    let child = bin()
        .args(["run", s.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    send(&child, "TERM");
    let done = child.wait_with_output().unwrap();
    assert_eq!(
        done.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(String::from_utf8_lossy(&done.stderr).contains("interrupted (SIGTERM)"));
    assert!(out.join("parts").exists() && !out.join("trials.parquet").exists());
}
