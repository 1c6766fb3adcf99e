//! The command line: the only place that prints. Reads as the pipeline:
//! spec text -> ExperimentSpec -> Plan -> run_ensemble -> write_run.

use clap::builder::RangedU64ValueParser;
use clap::{CommandFactory, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use signal_hook::consts::{SIGINT, SIGTERM};
use spikesweep::output;
use spikesweep::plan::Plan;
use spikesweep::plot::{parse_size, plot_summary, plot_trace};
use spikesweep::run::trace_trial;
use spikesweep::spec::ExperimentSpec;
use spikesweep::store::{self, Campaign, Existing, Shard};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Exit code for usage, spec and I/O errors (clap uses it too).
const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "spikesweep",
    version,
    about = "Parallel stochastic Hodgkin-Huxley network ensembles: one TOML spec in, Parquet tables of spikes, rates and synchrony out",
    after_help = "Examples:\n  spikesweep plan experiments/seed_pair.toml\n  spikesweep run experiments/seed_pair.toml\n  spikesweep run experiments/seed_pair.toml --out /tmp/pair --threads 4\n\nExit codes: 0 run completed (diverged trials are data, counted in the output), 2 usage, spec or I/O error, 130 / 143 interrupted by Ctrl-C (SIGINT) / SIGTERM: what finished is kept, --resume continues."
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
    },
    /// Plot a measure's replicate mean (with sem error bars) against a swept key
    #[command(
        after_help = "Examples:\n  spikesweep plot results/seed_pair --x noise.sigma --y kuramoto_r --by network.strength\n  spikesweep plot results/seed_pair --x noise.sigma --y rate_hz --by network.strength --out rate.svg\n\nMeasures (--y): rate_hz, cv_isi, chi, kuramoto_r, spike_sync."
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
        } => {
            let args = RunArgs {
                out,
                threads,
                quiet,
                force,
                resume,
                shard,
            };
            match cmd_run(&spec, args) {
                Ok(0) => Ok(()),
                Ok(code) => return ExitCode::from(code),
                Err(e) => Err(e),
            }
        }
        Command::Merge { out, force } => store::merge_shards(&out, force)
            .map(|(written, trials)| {
                println!("merged {trials} trials into {}/", out.display());
                for p in written {
                    println!("  {}", p.display());
                }
            })
            .map_err(|e| e.to_string()),
        Command::Plan { spec } => cmd_plan(&spec),
        Command::Schema => print(&spikesweep::spec::spec_schema()),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "spikesweep", &mut script);
            print(&String::from_utf8_lossy(&script))
        }
        Command::Summarize { dir } => store::summarize_dir(&dir)
            .map(|p| println!("wrote {}", p.display()))
            .map_err(|e| e.to_string()),
        Command::Trace {
            spec,
            trial,
            every,
            out,
        } => cmd_trace(&spec, trial, every, out),
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
                .map(|()| println!("wrote {}", out.display()))
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
                .map(|()| println!("wrote {}", out.display()))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Writes text to stdout; a full or closed stdout is an error, not a panic.
fn print(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write to stdout: {e}")),
    }
}

fn load_plan(path: &Path) -> Result<Plan, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read spec {}: {e}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let spec = ExperimentSpec::parse_in(&text, dir).map_err(|e| format!("{}: {e}", path.display()))?;
    Plan::new(spec).map_err(|e| format!("{}: {e}", path.display()))
}

fn cmd_plan(path: &Path) -> Result<(), String> {
    let plan = load_plan(path)?;
    let spec = &plan.spec;
    println!("spec        {} ({})", spec.name, path.display());
    if spec.axes.is_empty() {
        println!("sweep       none (one parameter point)");
    }
    for axis in &spec.axes {
        let shown: Vec<String> = axis.values.iter().take(8).map(|x| format!("{x}")).collect();
        let more = if axis.values.len() > 8 { ", ..." } else { "" };
        println!(
            "sweep       {} = [{}{}] ({})",
            axis.key,
            shown.join(", "),
            more,
            count(axis.values.len(), "value")
        );
    }
    print_model(&plan);
    println!("points      {}", plan.points.len());
    println!(
        "replicates  {} (seed {}, seed_mode = \"{}\")",
        spec.replicates,
        spec.seed,
        spec.seed_mode.name()
    );
    println!("trials      {}", plan.n_trials());
    println!("work        {:.3e} neuron-steps", plan.neuron_steps() as f64);
    println!("output      results/{}/ (default of `spikesweep run`)", spec.name);
    Ok(())
}

/// The model of `plan`: its name and source, rates mode, gates and the
/// parameter values of the first point (swept ones marked).
fn print_model(plan: &Plan) {
    let spec = &plan.spec;
    let model = &spec.model;
    let config = &plan.points[0].config;
    println!("model       {} ({}): {}", model.name, model.source, model.title);
    if !model.citation.is_empty() {
        println!("            {}", model.citation);
    }
    println!(
        "integrator  {}, rates {}, dt {} ms",
        config.method.name(),
        config.rates.mode().name(),
        config.dt_ms
    );
    for gate in &model.gates {
        let [a, b] = &gate.written;
        let [(ka, _), (kb, _)] = gate.kinetics.exprs();
        let kind = if gate.instantaneous { " (instantaneous)" } else { "" };
        println!("gate        {}{kind}: {ka} = {a}; {kb} = {b}", gate.name);
    }
    for (p, value) in model.params.iter().zip(&config.network.cell.values) {
        let swept = if spec.axes.iter().any(|a| a.key == format!("neuron.{}", p.name)) {
            ", swept"
        } else {
            ""
        };
        println!("parameter   neuron.{} = {value} {}{swept}  {}", p.name, p.units, p.doc);
    }
}

fn cmd_trace(path: &Path, id: u32, every: u64, out: Option<PathBuf>) -> Result<(), String> {
    let plan = load_plan(path)?;
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
    println!(
        "trial {id} (point {}, replicate {}, seed {}): {}, {} spikes",
        trial.point,
        trial.replicate,
        trial.seed,
        outcome.status.name(),
        outcome.spikes_ms.iter().map(Vec::len).sum::<usize>()
    );
    for p in paths {
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// Exit code after Ctrl-C (SIGINT) or SIGTERM, as shells report them.
const EXIT_SIGINT: usize = 130;
const EXIT_SIGTERM: usize = 143;

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
}

fn cmd_run(path: &Path, args: RunArgs) -> Result<u8, String> {
    let plan = load_plan(path)?;
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
        println!("{}: already complete, nothing to resume", dir.display());
        return Ok(0);
    }

    // First Ctrl-C: the running trials give up within a few milliseconds
    // (they are computed again on --resume), the finished ones are
    // committed, exit 130.
    // A second one exits at once (what is committed stays committed).
    let exit_code = Arc::new(AtomicUsize::new(0));
    let interrupted = Arc::new(AtomicBool::new(false));
    for (signal, code) in [(SIGINT, EXIT_SIGINT), (SIGTERM, EXIT_SIGTERM)] {
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
        println!("resuming {}: {before} of {mine} trials already written", dir.display());
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
        eprintln!(
            "interrupted ({}): {} of {mine} trials are written in {}; continue with:\n  {again}",
            if code == EXIT_SIGTERM { "SIGTERM" } else { "SIGINT" },
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
    println!(
        "{ran}, {} diverged, {total_s:.2} s wall ({:.2} s simulating on {}: {:.3e} neuron-steps/s)",
        stats.diverged,
        stats.sim_s,
        count(threads, "thread"),
        stats.neuron_steps / stats.sim_s
    );
    if stats.diverged > 0 {
        println!(
            "warning: {} diverged (status = \"diverged\", numbers null in trials.parquet); a smaller time.dt_ms or noise.sigma avoids it",
            count(stats.diverged, "trial")
        );
    }
    println!("results in {}/", dir.display());
    for p in written {
        println!("  {}", p.display());
    }
    Ok(0)
}

/// Says on stderr what opening the directory deleted (--force) or set
/// aside (parts or tables that failed their check).
fn report_open(campaign: &Campaign) {
    let opened = &campaign.opened;
    if opened.removed > 0 {
        eprintln!(
            "--force: deleted the earlier run in {} ({}) before starting",
            campaign.dir().display(),
            count(opened.removed, "file")
        );
    }
    for bad in &opened.set_aside {
        eprintln!(
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
