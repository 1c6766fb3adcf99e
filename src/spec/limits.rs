//! Guards on inputs that would hang, abort or exhaust memory rather than
//! fail: the size of a sweep, of its trials and of its work (checked from
//! the axes' lengths before anything is allocated), and the files a spec
//! reads (regular files of at most [`MAX_FILE_BYTES`], read with a cap).
//!
//! The size limits are not physical: they catch unit slips (`n = 1e7` for
//! `1e2`) before they hold a machine for a year. `--allow-huge` (on `plan`
//! and `run`) lifts them to what trial ids can address ([`Limits::HUGE`]).

use super::SpecError;
use std::io::Read;
use std::path::Path;

/// Most parameter points without `--allow-huge`. Every point is resolved
/// and validated before a run starts, about 0.2 ms each (`plan` of 1e5
/// points: 19 s on the 2-core test machine, of 1e6: over 3 min).
pub const MAX_POINTS: u64 = 100_000;

/// Most trials without `--allow-huge`.
pub const MAX_TRIALS: u64 = 100_000_000;

/// Most neuron-steps (the unit of work) without `--allow-huge`: 6.3
/// core-years at [`ASSUMED_RATE_PER_CORE`].
pub const MAX_NEURON_STEPS: f64 = 1e15;

/// Largest spec, model or matrix file read.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Longest `name` (it becomes a directory name; most file systems allow 255
/// bytes, and `.tmp` suffixes and shard names need some room).
pub const MAX_NAME_BYTES: usize = 200;

/// Neuron-steps per second per core assumed for cost estimates: below
/// every rate measured in README "Speed" (1.0e7 with exact rates, 2 to
/// 5e7 with tables), so an estimate errs long.
pub const ASSUMED_RATE_PER_CORE: f64 = 5e6;

/// How to lift the limits, for error messages.
pub const OVERRIDE: &str = "pass --allow-huge to plan and run it anyway";

/// The size limits a spec is checked against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub max_points: u64,
    pub max_trials: u64,
    pub max_neuron_steps: f64,
}

impl Limits {
    /// What `plan` and `run` accept without `--allow-huge`.
    pub const DEFAULT: Limits = Limits {
        max_points: MAX_POINTS,
        max_trials: MAX_TRIALS,
        max_neuron_steps: MAX_NEURON_STEPS,
    };

    /// With `--allow-huge`, and for runs already written: only what trial
    /// ids (u32) can address.
    pub const HUGE: Limits = Limits {
        max_points: u32::MAX as u64,
        max_trials: u32::MAX as u64,
        max_neuron_steps: f64::INFINITY,
    };

    pub fn new(allow_huge: bool) -> Limits {
        if allow_huge {
            Limits::HUGE
        } else {
            Limits::DEFAULT
        }
    }

    fn fix(&self, what: &str) -> String {
        if *self == Limits::HUGE {
            "the most trial ids can address: split the sweep into several specs".to_string()
        } else {
            format!("a limit against unit slips and exhausted memory: {what}, or {OVERRIDE}")
        }
    }

    /// Points and trials of axes of these lengths (key, number of values)
    /// with `replicates` each, checked before any value is generated.
    pub fn check_grid(&self, axes: &[(&str, u64)], replicates: u32) -> Result<(), SpecError> {
        let points = axes.iter().fold(1u128, |p, (_, n)| p.saturating_mul(*n as u128));
        let shape = axes
            .iter()
            .map(|(key, n)| format!("{key} {n}"))
            .collect::<Vec<_>>()
            .join(" x ");
        if points > self.max_points as u128 {
            return Err(SpecError::key(
                "sweep",
                None,
                format!(
                    "{shape} values make {points} parameter points, more than {} ({})",
                    self.max_points,
                    self.fix("shrink the sweep or split it into several specs")
                ),
            ));
        }
        let trials = points * replicates as u128;
        if trials > self.max_trials as u128 {
            return Err(SpecError::key(
                "replicates",
                Some(replicates.to_string()),
                format!(
                    "{points} parameter point{} x {replicates} replicates = {trials} trials, more than {} ({})",
                    if points == 1 { "" } else { "s" },
                    self.max_trials,
                    self.fix("use fewer replicates or points")
                ),
            ));
        }
        Ok(())
    }

    /// The total work of a plan, in neuron-steps.
    pub fn check_work(&self, neuron_steps: u128) -> Result<(), SpecError> {
        let work = neuron_steps as f64;
        if work > self.max_neuron_steps {
            return Err(SpecError::key(
                "time.duration_ms",
                None,
                format!(
                    "the spec's trials take {work:.3e} neuron-steps in all (trials x network.n x time.duration_ms / time.dt_ms), more than {:.0e}, about {} at {ASSUMED_RATE_PER_CORE:.0e} neuron-steps/s per core ({})",
                    self.max_neuron_steps,
                    duration(work / ASSUMED_RATE_PER_CORE),
                    self.fix("shorten time.duration_ms, raise time.dt_ms or use fewer trials or neurons")
                ),
            ));
        }
        Ok(())
    }
}

/// Seconds as the largest sensible unit: "40 s", "3.2 h", "12.5 days",
/// "6.3 years".
pub fn duration(seconds: f64) -> String {
    const DAY: f64 = 86_400.0;
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 7_200.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds < 2.0 * DAY {
        format!("{:.1} h", seconds / 3_600.0)
    } else if seconds < 730.0 * DAY {
        format!("{:.1} days", seconds / DAY)
    } else {
        format!("{:.1} years", seconds / (365.25 * DAY))
    }
}

/// The first value (in written order) equal to an earlier one, in
/// O(n log n): a sweep of 1e6 values is checked in milliseconds. `0.0` and
/// `-0.0` are equal, as `==` has them; values are finite (checked first).
pub fn first_repeat(values: &[f64]) -> Option<f64> {
    // -0.0 + 0.0 = 0.0: one key for both zeros under total_cmp.
    let mut order: Vec<(f64, usize)> = values.iter().map(|&x| (x + 0.0, 0)).collect();
    for (i, o) in order.iter_mut().enumerate() {
        o.1 = i;
    }
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    // In each run of equal values, the second (by position) is a repeat;
    // the first repeat in written order is the one at the lowest position.
    order
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| w[1].1)
        .min()
        .map(|i| values[i])
}

/// Drops a UTF-8 byte-order mark (Windows editors write one).
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Reads a text file the spec names (the spec itself, a model file, a
/// matrix file): it must be a regular file (a FIFO would block, a device
/// such as /dev/zero would never end) of at most [`MAX_FILE_BYTES`],
/// valid UTF-8; a byte-order mark is dropped. Never blocks: the file is
/// checked before it is opened, and opened non-blocking.
pub fn read_text(path: &Path) -> Result<String, String> {
    let not_regular =
        |kind: &str| format!("is {kind}, not a regular file (spikesweep reads specs, models and matrices from files)");
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(not_regular(file_kind(&meta)));
    }
    let too_big = |size: u64| {
        format!(
            "is {size} bytes, more than the {} MiB spikesweep reads: is it the right file?",
            MAX_FILE_BYTES >> 20
        )
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big(meta.len()));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Should it have become a FIFO since the check, opening it does not
        // wait for a writer.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(not_regular(file_kind(&meta)));
    }
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_FILE_BYTES) as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    let text = String::from_utf8(bytes).map_err(|e| format!("is not UTF-8 text: {e}"))?;
    Ok(match strip_bom(&text).len() {
        n if n == text.len() => text,
        _ => strip_bom(&text).to_string(),
    })
}

fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_repeat_is_the_first_in_written_order() {
        assert_eq!(first_repeat(&[1.0, 2.0, 3.0]), None);
        assert_eq!(first_repeat(&[3.0, 1.0, 2.0, 1.0, 3.0]), Some(1.0));
        assert_eq!(first_repeat(&[0.0, -0.0]), Some(-0.0));
        assert_eq!(first_repeat(&[]), None);
        // Quadratic would take minutes here.
        let many: Vec<f64> = (0..2_000_000).map(|i| i as f64).collect();
        assert_eq!(first_repeat(&many), None);
    }

    #[test]
    fn grid_limits_name_the_figure_and_the_override() {
        let e = Limits::DEFAULT
            .check_grid(&[("noise.sigma", 1000), ("gap.g", 2000)], 1)
            .unwrap_err();
        let e = e.to_string();
        assert!(
            e.starts_with(
                "sweep: noise.sigma 1000 x gap.g 2000 values make 2000000 parameter points, more than 100000"
            ),
            "{e}"
        );
        assert!(e.contains("--allow-huge"), "{e}");
        assert!(Limits::HUGE
            .check_grid(&[("noise.sigma", 1000), ("gap.g", 2000)], 1)
            .is_ok());
        let e = Limits::HUGE
            .check_grid(&[("noise.sigma", u64::MAX)], 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("trial ids can address") && !e.contains("--allow-huge"),
            "{e}"
        );
        let e = Limits::DEFAULT.check_grid(&[], 1_000_000_000).unwrap_err().to_string();
        assert!(
            e.starts_with("replicates = 1000000000: 1 parameter point x 1000000000 replicates"),
            "{e}"
        );
        assert!(Limits::DEFAULT.check_work(1e15 as u128).is_ok());
        assert!(Limits::DEFAULT
            .check_work(2e15 as u128)
            .unwrap_err()
            .to_string()
            .contains("2.000e15 neuron-steps"));
    }
}
