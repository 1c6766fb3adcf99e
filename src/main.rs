//! The command line: the only place that prints. Reads as the pipeline:
//! spec text -> ExperimentSpec -> Plan -> run_ensemble -> write_run.

use clap::builder::RangedU64ValueParser;
use clap::{CommandFactory, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use spikesweep::observe::measures::MEASURES;
use spikesweep::output;
use spikesweep::plan::Plan;
use spikesweep::plot::{parse_size, plot_psd, plot_raster, plot_summary, plot_trace};
use spikesweep::run::trace_trial;
use spikesweep::spec::limits::{duration, ASSUMED_RATE_PER_CORE};
use spikesweep::spec::{ExperimentSpec, Limits};
use spikesweep::store::{self, Campaign, Existing, Shard};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Exit code for usage, spec and I/O errors (clap uses it too).
const EXIT_USAGE: u8 = 2;

/// Exit code when stdout is a closed pipe (`spikesweep plan S | head -1`):
/// quiet, as a program killed by SIGPIPE (128 + 13) reports in shells.
const EXIT_BROKEN_PIPE: u8 = 141;

/// Set when a write to stdout found the pipe closed.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// `println!` that returns an error instead of panicking when stdout is
/// full or closed (`plan > /dev/full`, `plan | head -1`).
macro_rules! say {
    ($($arg:tt)*) => { emit(format_args!($($arg)*)) };
}

/// One line to the locked stdout, flushed: its error names stdout.
fn emit(line: std::fmt::Arguments) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(line)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                STDOUT_CLOSED.store(true, Ordering::SeqCst);
            }
            format!("cannot write to stdout: {e}")
        })
}

#[derive(Parser)]
#[command(
    name = "spikesweep",
    version,
    about = "Parallel stochastic Hodgkin-Huxley network ensembles: one TOML spec in, Parquet tables of spikes, rates and synchrony out",
    after_help = "Examples:\n  spikesweep plan experiments/seed_pair.toml\n  spikesweep run experiments/seed_pair.toml\n  spikesweep run experiments/seed_pair.toml --out /tmp/pair --threads 4\n\nExit codes: 0 run completed (diverged trials are data, counted in the output), 2 usage, spec or I/O error (a full stdout included), 129 / 130 / 143 interrupted by SIGHUP / Ctrl-C (SIGINT) / SIGTERM: what finished is kept, --resume continues; 141 stdout was a closed pipe (nothing printed to say so)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every trial of a spec and write trials, neurons, spikes and summary tables
    #[command(
        after_help = "Examples:\n  spikesweep run experiments/seed_pair.toml\n      writes results/seed_pair/{trials,neurons,spikes,summary}.parquet, spec.toml and manifest.toml\n  spikesweep run my_sweep.toml --out /scratch/sweep1 --threads 8 --quiet"
    )]
    Run {
        /// Experiment spec (TOML; see README "Spec reference")
        spec: PathBuf,
        /// Output directory [default: results/<name> from the spec]
        #[arg(long)]
        out: Option<PathBuf>,
        /// Worker threads (at most 4096); 0 = one per core. Results do not depend on it.
        #[arg(long, default_value_t = 0, value_parser = RangedU64ValueParser::<usize>::new().range(0..=4096))]
        threads: usize,
        /// No progress bar
        #[arg(long, short)]
        quiet: bool,
        /// Delete an earlier run in the output directory and start over
        #[arg(long, conflicts_with = "resume")]
        force: bool,
        /// Continue an interrupted run: compute only the trials not yet written
        #[arg(long)]
        resume: bool,
        /// Run only shard K of N (trials with id mod N = K) into OUT/shards/K-of-N/
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// Accept more than 1e5 points, 1e8 trials or 1e15 neuron-steps
        #[arg(long)]
        allow_huge: bool,
    },
    /// Merge the shards in OUT/shards/ into the tables of the whole run in OUT
    #[command(
        after_help = "Example:\n  spikesweep run experiments/seed_pair.toml --shard 0/2 --out /tmp/pair\n  spikesweep run experiments/seed_pair.toml --shard 1/2 --out /tmp/pair\n  spikesweep merge /tmp/pair"
    )]
    Merge {
        /// Output directory of the sharded run (holding shards/K-of-N/)
        out: PathBuf,
        /// Replace a complete run of another spec in OUT
        #[arg(long)]
        force: bool,
    },
    /// Validate a spec and show its sweep, trial count and cost; writes nothing
    #[command(after_help = "Example:\n  spikesweep plan experiments/seed_pair.toml")]
    Plan {
        /// Experiment spec (TOML)
        spec: PathBuf,
        /// Accept more than 1e5 points, 1e8 trials or 1e15 neuron-steps
        #[arg(long)]
        allow_huge: bool,
    },
    /// Rebuild summary.parquet of a run directory from its trials.parquet
    #[command(after_help = "Example:\n  spikesweep summarize results/seed_pair")]
    Summarize {
        /// Run directory holding trials.parquet
        dir: PathBuf,
    },
    /// Re-simulate one trial exactly as the ensemble did and record its state
    #[command(
        after_help = "Examples:\n  spikesweep trace experiments/seed_pair.toml --trial 37\n      writes results/seed_pair/trace_37.parquet (t_ms, neuron, v_mv, m, h, n, s)\n      and trace_37.spikes.parquet (the trial's spikes, equal to its rows in spikes.parquet)\n  spikesweep trace experiments/seed_pair.toml --trial 0 --every 10 --out /tmp/t0.parquet"
    )]
    Trace {
        /// Experiment spec (TOML)
        spec: PathBuf,
        /// Trial id (the `trial` column of trials.parquet)
        #[arg(long)]
        trial: u32,
        /// Record every K-th step (1 = every step)
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        every: u64,
        /// Output file [default: results/<name>/trace_<ID>.parquet]
        #[arg(long)]
        out: Option<PathBuf>,
        /// Accept a spec of more than 1e5 points, 1e8 trials or 1e15 neuron-steps
        #[arg(long)]
        allow_huge: bool,
    },
    /// Plot a measure's replicate mean (with sem error bars) against a swept key
    #[command(
        after_help = plot_help()
    )]
    Plot {
        /// Run directory holding summary.parquet
        dir: PathBuf,
        /// Swept key on the x axis, e.g. noise.sigma
        #[arg(long)]
        x: String,
        /// Measure on the y axis
        #[arg(long)]
        y: String,
        /// Swept key giving one line per value, e.g. network.strength
        #[arg(long)]
        by: Option<String>,
        /// Output image, .png or .svg [default: DIR/<y>_vs_<x>.png]
        #[arg(long)]
        out: Option<PathBuf>,
        /// Image size in pixels
        #[arg(long, default_value = "900x600")]
        size: String,
    },
    /// Plot the voltage traces of a trace file with their spikes marked
    #[command(
        name = "plot-trace",
        after_help = "Examples:\n  spikesweep plot-trace results/seed_pair/trace_37.parquet\n      writes results/seed_pair/trace_37.png\n  spikesweep plot-trace results/seed_pair/trace_37.parquet --from-ms 500 --to-ms 700 --out zoom.svg"
    )]
    PlotTrace {
        /// Trace file written by `spikesweep trace`
        file: PathBuf,
        /// Output image, .png or .svg [default: FILE with .png]
        #[arg(long)]
        out: Option<PathBuf>,
        /// Image size in pixels
        #[arg(long, default_value = "1200x500")]
        size: String,
        /// Show t >= this (ms)
        #[arg(long, default_value_t = f64::NEG_INFINITY, hide_default_value = true)]
        from_ms: f64,
        /// Show t <= this (ms)
        #[arg(long, default_value_t = f64::INFINITY, hide_default_value = true)]
        to_ms: f64,
    },
    /// Draw a trial's spike raster, with the population rate below it
    #[command(
        after_help = "Examples:\n  spikesweep plot-raster results/wang_buzsaki_network --trial 12\n  spikesweep plot-raster results/seed_pair --trial 0 --from-ms 200 --to-ms 400 --out raster.svg"
    )]
    PlotRaster {
        /// Run directory holding spikes.parquet
        dir: PathBuf,
        /// Trial id (the `trial` column of trials.parquet)
        #[arg(long)]
        trial: u32,
        /// Output image, .png or .svg [default: DIR/raster_<ID>.png]
        #[arg(long)]
        out: Option<PathBuf>,
        /// Image size in pixels
        #[arg(long, default_value = "1200x700")]
        size: String,
        /// Show t >= this (ms)
        #[arg(long, default_value_t = 0.0)]
        from_ms: f64,
        /// Show t <= this (ms)
        #[arg(long, default_value_t = f64::INFINITY, hide_default_value = true)]
        to_ms: f64,
    },
    /// Draw the power spectrum of a trial's population spike count, its peak marked
    #[command(
        after_help = "Example:\n  spikesweep plot-psd results/wang_buzsaki_network --trial 12\n\nThe spectrum is the one pop_peak_hz and pop_peak_q are read from (README \"Measures\")."
    )]
    PlotPsd {
        /// Run directory holding spikes.parquet
        dir: PathBuf,
        /// Trial id (the `trial` column of trials.parquet)
        #[arg(long)]
        trial: u32,
        /// Output image, .png or .svg [default: DIR/psd_<ID>.png]
        #[arg(long)]
        out: Option<PathBuf>,
        /// Image size in pixels
        #[arg(long, default_value = "900x600")]
        size: String,
    },
    /// Print the JSON Schema of a spec, for editors that check TOML as it is typed
    #[command(
        after_help = "Example:\n  spikesweep schema > spikesweep.schema.json\n\nThe repo's spikesweep.schema.json is this output. Each spec in experiments/ starts with\n  #:schema ../spikesweep.schema.json\nwhich taplo and VS Code's Even Better TOML read: keys complete and mistakes are flagged as you type."
    )]
    Schema,
    /// Print a shell completion script
    #[command(
        after_help = "Examples:\n  spikesweep completions bash > ~/.local/share/bash-completion/completions/spikesweep\n  spikesweep completions zsh > ~/.zfunc/_spikesweep      (with fpath+=~/.zfunc in ~/.zshrc)\n  spikesweep completions fish > ~/.config/fish/completions/spikesweep.fish"
    )]
    Completions {
        /// Shell to complete in
        shell: clap_complete::Shell,
    },
}

/// `plot --help`: examples, then the measures `--y` takes, from the registry.
fn plot_help() -> String {
    let mut text = String::from(
        "Examples:\n  spikesweep plot results/seed_pair --x noise.sigma --y kuramoto_r --by network.strength\n  spikesweep plot results/seed_pair --x noise.sigma --y rate_hz --by network.strength --out rate.svg\n\nMeasures (--y):\n",
    );
    for m in MEASURES {
        text += &format!("  {:<12} {}\n", m.column, m.label);
    }
    text
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            spec,
            out,
            threads,
            quiet,
            force,
            resume,
            shard,
            allow_huge,
        } => {
            let args = RunArgs {
                out,
                threads,
                quiet,
                force,
                resume,
                shard,
                limits: Limits::new(allow_huge),
            };
            match cmd_run(&spec, args) {
                Ok(0) => Ok(()),
                Ok(code) => return ExitCode::from(code),
                Err(e) => Err(e),
            }
        }
        Command::Merge { out, force } => {
            store::merge_shards(&out, force)
                .map_err(|e| e.to_string())
                .and_then(|(written, trials)| {
                    say!("merged {trials} trials into {}/", out.display())?;
                    written.iter().try_for_each(|p| say!("  {}", p.display()))
                })
        }
        Command::Plan { spec, allow_huge } => cmd_plan(&spec, &Limits::new(allow_huge)),
        Command::Schema => print(&spikesweep::spec::spec_schema()),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "spikesweep", &mut script);
            print(&String::from_utf8_lossy(&script))
        }
        Command::Summarize { dir } => store::summarize_dir(&dir)
            .map_err(|e| e.to_string())
            .and_then(|p| say!("wrote {}", p.display())),
        Command::Trace {
            spec,
            trial,
            every,
            out,
            allow_huge,
        } => cmd_trace(&spec, trial, every, out, &Limits::new(allow_huge)),
        Command::Plot {
            dir,
            x,
            y,
            by,
            out,
            size,
        } => {
            let out = out.unwrap_or_else(|| dir.join(format!("{y}_vs_{}.png", x.replace('.', "_"))));
            parse_size(&size)
                .and_then(|size| plot_summary(&dir, &x, &y, by.as_deref(), &out, size))
                .and_then(|()| say!("wrote {}", out.display()))
        }
        Command::PlotTrace {
            file,
            out,
            size,
            from_ms,
            to_ms,
        } => {
            let out = out.unwrap_or_else(|| file.with_extension("png"));
            parse_size(&size)
                .and_then(|size| plot_trace(&file, &out, size, (from_ms, to_ms)))
                .and_then(|()| say!("wrote {}", out.display()))
        }
        Command::PlotRaster {
            dir,
            trial,
            out,
            size,
            from_ms,
            to_ms,
        } => {
            let out = out.unwrap_or_else(|| dir.join(format!("raster_{trial}.png")));
            parse_size(&size)
                .and_then(|size| plot_raster(&dir, trial, &out, size, (from_ms, to_ms)))
                .and_then(|()| say!("wrote {}", out.display()))
        }
        Command::PlotPsd { dir, trial, out, size } => {
            let out = out.unwrap_or_else(|| dir.join(format!("psd_{trial}.png")));
            parse_size(&size)
                .and_then(|size| plot_psd(&dir, trial, &out, size))
                .and_then(|()| say!("wrote {}", out.display()))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) if STDOUT_CLOSED.load(Ordering::SeqCst) => ExitCode::from(EXIT_BROKEN_PIPE),
        Err(message) => {
            // Not eprintln!: a closed stderr must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "error: {message}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Writes text to stdout, as `say!` does for a line.
fn print(text: &str) -> Result<(), String> {
    say!("{}", text.trim_end_matches('\n'))
}

/// The spec at `path` (a regular file of at most 64 MiB), parsed, sized
/// against `limits` before its sweep is expanded, and expanded.
fn load_plan(path: &Path, limits: &Limits) -> Result<Plan, String> {
    let text =
        spikesweep::spec::limits::read_text(path).map_err(|e| format!("cannot read spec {}: {e}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let spec = ExperimentSpec::parse_file_text(&text, dir, limits).map_err(|e| format!("{}: {e}", path.display()))?;
    Plan::new_limited(spec, limits).map_err(|e| format!("{}: {e}", path.display()))
}

/// Time of `neuron_steps` on `cores` at the assumed (conservative) rate.
fn estimate(neuron_steps: f64, cores: usize) -> f64 {
    neuron_steps / (ASSUMED_RATE_PER_CORE * cores as f64)
}

fn cmd_plan(path: &Path, limits: &Limits) -> Result<(), String> {
    let plan = load_plan(path, limits)?;
    let spec = &plan.spec;
    say!("spec        {} ({})", spec.name, path.display())?;
    if spec.axes.is_empty() {
        say!("sweep       none (one parameter point)")?;
    }
    for axis in &spec.axes {
        let shown: Vec<String> = axis.values.iter().take(8).map(|x| format!("{x}")).collect();
        let more = if axis.values.len() > 8 { ", ..." } else { "" };
        say!(
            "sweep       {} = [{}{}] ({}), column {}, unit {}",
            axis.key,
            shown.join(", "),
            more,
            count(axis.values.len(), "value"),
            axis.column(),
            spec.units(&axis.key).unwrap_or_else(|| output::NO_UNIT.into())
        )?;
    }
    print_model(&plan)?;
    print_measures(&plan)?;
    say!("points      {}", plan.points.len())?;
    say!(
        "replicates  {} (seed {}, seed_mode = \"{}\")",
        spec.replicates,
        spec.seed,
        spec.seed_mode.name()
    )?;
    say!("trials      {}", plan.n_trials())?;
    let work = plan.neuron_steps() as f64;
    say!(
        "work        {work:.3e} neuron-steps: about {} on one core at {ASSUMED_RATE_PER_CORE:.0e} neuron-steps/s (a rate below every one measured, README Speed)",
        duration(estimate(work, 1))
    )?;
    say!("output      results/{}/ (default of `spikesweep run`)", spec.name)
}

/// The model of `plan`: its name and source, rates mode, gates and the
/// parameter values of the first point (swept ones marked).
fn print_model(plan: &Plan) -> Result<(), String> {
    let spec = &plan.spec;
    let model = &spec.model;
    let config = &plan.points[0].config;
    say!("model       {} ({}): {}", model.name, model.source, model.title)?;
    if !model.citation.is_empty() {
        say!("            {}", model.citation)?;
    }
    say!(
        "integrator  {}, rates {}, dt {} ms",
        config.method.name(),
        config.rates.mode().name(),
        config.dt_ms
    )?;
    for gate in &model.gates {
        let [a, b] = &gate.written;
        let [(ka, _), (kb, _)] = gate.kinetics.exprs();
        let kind = if gate.instantaneous { " (instantaneous)" } else { "" };
        say!("gate        {}{kind}: {ka} = {a}; {kb} = {b}", gate.name)?;
    }
    for (p, value) in model.params.iter().zip(&config.network.cell.values) {
        let swept = if spec.axes.iter().any(|a| a.key == format!("neuron.{}", p.name)) {
            ", swept"
        } else {
            ""
        };
        say!("parameter   neuron.{} = {value} {}{swept}  {}", p.name, p.units, p.doc)?;
    }
    Ok(())
}

/// The measures of every trial, with their parameters at the first point.
fn print_measures(plan: &Plan) -> Result<(), String> {
    let params = &plan.points[0].config.measures;
    for m in MEASURES {
        let values: Vec<String> = m
            .params
            .iter()
            .map(|k| format!("{k} = {}", params.get(k).unwrap_or(f64::NAN)))
            .collect();
        let with = if values.is_empty() {
            String::new()
        } else {
            format!(" ({})", values.join(", "))
        };
        say!("measure     {}{with}: {}", m.column, m.definition)?;
    }
    Ok(())
}

fn cmd_trace(path: &Path, id: u32, every: u64, out: Option<PathBuf>, limits: &Limits) -> Result<(), String> {
    let plan = load_plan(path, limits)?;
    if id >= plan.n_trials() {
        return Err(format!(
            "--trial {id}: this spec has trials 0 to {}",
            plan.n_trials() - 1
        ));
    }
    let trial = plan.trial(id);
    let cfg = &plan.points[trial.point as usize].config;
    let out = out.unwrap_or_else(|| {
        Path::new("results")
            .join(&plan.spec.name)
            .join(format!("trace_{id}.parquet"))
    });
    if out.extension().and_then(|e| e.to_str()) != Some("parquet") {
        return Err(format!(
            "--out {}: a trace is a Parquet file, its name must end in .parquet",
            out.display()
        ));
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("{}: cannot create the directory: {e}", parent.display()))?;
    }
    let (outcome, trace) = trace_trial(cfg, trial.seed, every);
    let paths = output::write_trace(&out, &plan.spec, id, &outcome, trace).map_err(|e| e.to_string())?;
    say!(
        "trial {id} (point {}, replicate {}, seed {}): {}, {} spikes",
        trial.point,
        trial.replicate,
        trial.seed,
        outcome.status.name(),
        outcome.spikes_ms.iter().map(Vec::len).sum::<usize>()
    )?;
    paths.iter().try_for_each(|p| say!("wrote {}", p.display()))
}

/// Exit code after SIGHUP, Ctrl-C (SIGINT) or SIGTERM, as shells report them.
const EXIT_SIGHUP: usize = 129;
const EXIT_SIGINT: usize = 130;
const EXIT_SIGTERM: usize = 143;

/// `run` states the plan's cost when it is more than this (seconds at
/// ASSUMED_RATE_PER_CORE on the threads it has).
const SAY_COST_ABOVE_S: f64 = 3600.0;

/// "1 trial", "2 trials".
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

struct RunArgs {
    out: Option<PathBuf>,
    threads: usize,
    quiet: bool,
    force: bool,
    resume: bool,
    shard: Option<String>,
    limits: Limits,
}

fn cmd_run(path: &Path, args: RunArgs) -> Result<u8, String> {
    let plan = load_plan(path, &args.limits)?;
    let shard = args.shard.as_deref().map(Shard::parse).transpose()?;
    let base = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("results").join(&plan.spec.name));
    let existing = match (args.force, args.resume) {
        (true, _) => Existing::Overwrite,
        (false, true) => Existing::Resume,
        (false, false) => Existing::Refuse,
    };
    let mut campaign = Campaign::open(&plan, &base, shard, existing).map_err(|e| e.to_string())?;
    let dir = campaign.dir().to_path_buf();
    report_open(&campaign);
    if campaign.opened.complete {
        say!("{}: already complete, nothing to resume", dir.display())?;
        return Ok(0);
    }

    // First Ctrl-C (or SIGTERM, or SIGHUP: a closed terminal or ssh
    // session): the running trials give up within a few milliseconds
    // (they are computed again on --resume), the finished ones are
    // committed, exit 130 (143, 129).
    // A second one exits at once (what is committed stays committed).
    let exit_code = Arc::new(AtomicUsize::new(0));
    let interrupted = Arc::new(AtomicBool::new(false));
    for (signal, code) in [(SIGINT, EXIT_SIGINT), (SIGTERM, EXIT_SIGTERM), (SIGHUP, EXIT_SIGHUP)] {
        signal_hook::flag::register_conditional_shutdown(signal, code as i32, Arc::clone(&interrupted))
            .and_then(|_| signal_hook::flag::register_usize(signal, Arc::clone(&exit_code), code))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&interrupted)))
            .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    }
    let stop = || interrupted.load(Ordering::SeqCst);

    let threads = if args.threads == 0 {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    } else {
        args.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| format!("cannot start worker threads: {e}"))?;
    let (mine, before) = (campaign.mine.len(), campaign.written());
    let bar = progress_bar(&campaign, args.quiet);
    let trials_done = AtomicUsize::new(before);
    let on_done = |_: &_| {
        let k = trials_done.fetch_add(1, Ordering::Relaxed) + 1;
        if !bar.is_hidden() {
            bar.set_message(format!("{k}/{mine}"));
        }
    };
    if before > 0 {
        say!("resuming {}: {before} of {mine} trials already written", dir.display())?;
    }
    let todo_work = campaign.work(&campaign.todo) as f64;
    if estimate(todo_work, threads) > SAY_COST_ABOVE_S {
        say!(
            "cost: {todo_work:.3e} neuron-steps, about {} on {} at {ASSUMED_RATE_PER_CORE:.0e} neuron-steps/s per thread (a rate below every one measured; the progress bar's ETA is measured); Ctrl-C keeps the finished trials, --resume continues",
            duration(estimate(todo_work, threads)),
            count(threads, "thread")
        )?;
    }

    let start = Instant::now();
    campaign
        .run(&pool, threads, &on_done, &|steps| bar.inc(steps), &stop)
        .map_err(|e| e.to_string())?;
    let stats = campaign.stats.clone();
    if stop() {
        bar.abandon();
        let code = exit_code.load(Ordering::SeqCst);
        let mut again = format!("spikesweep run {} --resume", path.display());
        if args.out.is_some() {
            again += &format!(" --out {}", base.display());
        }
        if let Some(s) = shard {
            again += &format!(" --shard {}/{}", s.index, s.count);
        }
        let _ = writeln!(
            std::io::stderr(),
            "interrupted ({}): {} of {mine} trials are written in {}; continue with:\n  {again}",
            match code {
                EXIT_SIGTERM => "SIGTERM",
                EXIT_SIGHUP => "SIGHUP",
                _ => "SIGINT",
            },
            campaign.written(),
            dir.join(store::PARTS_DIR).display()
        );
        return Ok(code as u8);
    }
    bar.finish_and_clear();
    let written = campaign.finish().map_err(|e| e.to_string())?;
    let total_s = start.elapsed().as_secs_f64();
    // After --resume, say that the count is this session's.
    let ran = match before {
        0 => count(stats.ran, "trial"),
        before => format!("{} (of {mine}; {before} written before)", count(stats.ran, "trial")),
    };
    say!(
        "{ran}, {} diverged, {total_s:.2} s wall ({:.2} s simulating on {}: {:.3e} neuron-steps/s)",
        stats.diverged,
        stats.sim_s,
        count(threads, "thread"),
        stats.neuron_steps / stats.sim_s
    )?;
    if stats.diverged > 0 {
        say!(
            "warning: {} diverged (status = \"diverged\", numbers null in trials.parquet); a smaller time.dt_ms or noise.sigma avoids it",
            count(stats.diverged, "trial")
        )?;
    }
    say!("results in {}/", dir.display())?;
    written.iter().try_for_each(|p| say!("  {}", p.display()))?;
    Ok(0)
}

/// Says on stderr what opening the directory deleted (--force) or set
/// aside (parts or tables that failed their check).
fn report_open(campaign: &Campaign) {
    let opened = &campaign.opened;
    if opened.removed > 0 {
        let _ = writeln!(
            std::io::stderr(),
            "--force: deleted the earlier run in {} ({}) before starting",
            campaign.dir().display(),
            count(opened.removed, "file")
        );
    }
    for bad in &opened.set_aside {
        let _ = writeln!(
            std::io::stderr(),
            "warning: {} fails its check ({}); moved to {}, its trials are computed again",
            bad.path.display(),
            bad.check,
            bad.moved_to.display()
        );
    }
}

/// The bar counts neuron-steps, which trials report as they go (every
/// run::CHECK_STEPS steps): it moves during one long trial, and its ETA
/// holds when trials differ in cost (a sweep over n or duration).
fn progress_bar(campaign: &Campaign, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let total_work = campaign.work(&campaign.mine);
    let bar = ProgressBar::with_draw_target(Some(total_work), ProgressDrawTarget::stderr()).with_message(format!(
        "{}/{}",
        campaign.written(),
        campaign.mine.len()
    ));
    bar.set_style(
        ProgressStyle::with_template("{bar:40.cyan/blue} {percent:>3}%  {msg} trials  elapsed {elapsed}  ETA {eta}")
            .expect("valid template"),
    );
    bar.set_position(total_work - campaign.work(&campaign.todo));
    bar.reset_eta();
    bar
}
