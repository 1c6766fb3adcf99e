use super::run_dir::committed_parts;
use super::*;
use crate::plan::Plan;
use crate::run::TrialResult;
use crate::spec::ExperimentSpec;

#[test]
fn shard_parsing_and_ownership() {
    let s = Shard::parse("2/5").unwrap();
    assert_eq!(s.dir_name(), "2-of-5");
    assert!(s.owns(7) && !s.owns(8));
    for bad in ["5/5", "1", "a/2", "0/0", "-1/3"] {
        assert!(Shard::parse(bad).is_err(), "{bad}");
    }
    // Every trial belongs to exactly one shard.
    for id in 0..100 {
        assert_eq!((0..7).filter(|&k| Shard { index: k, count: 7 }.owns(id)).count(), 1);
    }
}

fn tiny_plan(replicates: u32) -> Plan {
    let text = format!("name = \"v\"\nreplicates = {replicates}\n[time]\nduration_ms = 5.0\n");
    Plan::new(ExperimentSpec::parse(&text).unwrap()).unwrap()
}

fn result(plan: &Plan, id: u32) -> TrialResult {
    let trial = plan.trial(id);
    let outcome = crate::run::simulate_trial(&plan.points[trial.point as usize].config, trial.seed);
    TrialResult {
        trial,
        outcome,
        wall_ms: 1.0,
    }
}

#[test]
fn a_run_is_resumed_only_by_the_version_that_started_it() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = tiny_plan(2);
    let lock = DirLock::acquire(&tmp.path().join("run")).unwrap();
    open_run(&lock, &plan, None, Existing::Refuse).unwrap();
    write_part(&lock, &plan, &[result(&plan, 0)]).unwrap();
    // The same version resumes it, the one trial left to do.
    assert_eq!(open_run(&lock, &plan, None, Existing::Resume).unwrap().done, vec![0]);
    // A part recorded by another version: refused, naming both.
    let record = committed_parts(lock.dir()).unwrap()[0].table("trials");
    let record = record.with_file_name(
        record
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace("trials.parquet", "record.toml"),
    );
    let text = std::fs::read_to_string(&record).unwrap();
    let version = format!("spikesweep_version = \"{}\"", env!("CARGO_PKG_VERSION"));
    std::fs::write(&record, text.replace(&version, "spikesweep_version = \"0.0.1\"")).unwrap();
    let e = open_run(&lock, &plan, None, Existing::Resume).unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "written by spikesweep 0.0.1, this is {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{e}"
    );
}

#[test]
fn a_second_lock_on_a_directory_is_refused_naming_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let held = DirLock::acquire(tmp.path()).unwrap();
    // flock conflicts between two open files, even in one process.
    let e = DirLock::acquire(tmp.path()).unwrap_err().to_string();
    assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
    drop(held);
    DirLock::acquire(tmp.path()).unwrap();
}

#[test]
fn a_campaign_resumes_past_a_corrupt_part_to_the_same_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = tiny_plan(6);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let run = |dir: &std::path::Path, existing| {
        let mut c = Campaign::open(&plan, dir, None, existing).unwrap();
        c.run(&pool, 1, &|_| {}, &|_| {}, &|| false).unwrap();
        c
    };
    let clean = tmp.path().join("clean");
    run(&clean, Existing::Refuse).finish().unwrap();
    // Two parts by hand, the first then corrupted: resume sets it aside.
    let dir = tmp.path().join("broken");
    {
        let lock = DirLock::acquire(&dir).unwrap();
        open_run(&lock, &plan, None, Existing::Refuse).unwrap();
        write_part(&lock, &plan, &[result(&plan, 0), result(&plan, 1)]).unwrap();
        write_part(&lock, &plan, &[result(&plan, 2)]).unwrap();
    }
    let first = dir.join("parts/part-0000000000-0000000001.spikes.parquet");
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[20] ^= 0xff;
    std::fs::write(&first, bytes).unwrap();
    let c = run(&dir, Existing::Resume);
    assert_eq!(c.opened.done, vec![2], "the corrupt part's trials are done again");
    assert_eq!(c.opened.set_aside.len(), 1);
    assert!(c.opened.set_aside[0].check.contains("spikes.parquet: checksum"));
    c.finish().unwrap();
    for t in ["trials", "neurons", "spikes"] {
        let drop = |df: DataFrame| df.drop("wall_ms").unwrap_or(df);
        let (a, b) = (read_final(&clean, t).unwrap(), read_final(&dir, t).unwrap());
        assert!(drop(a).equals_missing(&drop(b)), "{t}");
    }
}

#[test]
fn spec_hash_is_fnv1a() {
    // FNV-1a 64 of "" and of "a" (published test vectors).
    assert_eq!(spec_hash(""), "cbf29ce484222325");
    assert_eq!(spec_hash("a"), "af63dc4c8601ec8c");
}
