//! `cargo xtask`: the project's task runner (set-up, code generation, tests).
//!
//! Why a Rust program rather than shell scripts: it runs wherever the Rust
//! toolchain runs, its logic (package checks, command lines, directory diffs)
//! has unit tests, and `cargo xtask ...` is the one entry point for
//! developers and CI alike. It links no system library (only pure-Rust crates),
//! so it builds on a fresh Debian 12 *before* `cargo xtask setup` has installed
//! anything.
//!
//! Each module does one job: [`setup`] (Debian packages), [`flatc_install`]
//! (the flatc 25.12 tool), [`flatc_gen`] (regenerate / check the committed
//! FlatBuffers code), [`cbindgen_gen`] (regenerate / check the C API's
//! header), [`test`](mod@test) (the test command), [`test_count`] (adding up
//! the tests run), [`timing`] (step durations), [`bench`](mod@bench) (the
//! redirection-vs-re-encode benchmark), [`qemu`] (a QEMU able to create the
//! device, and the `qemu attach` test step), [`demo`] (the end-to-end demo),
//! [`guest_image`], [`guest_desktop`], [`kmod`] and [`cpio`] (the test
//! guest, its desktop and kernel modules), [`vm`] (the VM tests and
//! `demo --vm`), [`fresh`] (`fresh-check`: a command in a fresh Debian 12
//! root), [`process`] (running programs) and [`tempdir`] (scratch
//! directories).

mod bench;
mod cbindgen_gen;
mod cpio;
mod demo;
mod flatc_gen;
mod flatc_install;
mod fresh;
mod fuzz;
mod guest_desktop;
mod guest_image;
mod kmod;
mod matrix;
mod process;
mod qemu;
mod reaper;
mod runtime_deps;
mod scope;
mod setup;
mod tempdir;
mod test;
mod test_count;
mod timing;
mod vm;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

/// Command line of `cargo xtask`.
#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "Project tasks for vhost-device-media. Relative paths are taken from the workspace root."
)]
struct Cli {
    /// The task to run.
    #[command(subcommand)]
    task: Task,
}

/// The tasks.
#[derive(Debug, Subcommand)]
enum Task {
    /// Install the Debian packages the project needs (as root; otherwise print
    /// the apt command) and flatc 25.12 in a cache directory outside the repository.
    Setup,
    /// Check that setup installs every package that the code and the tests
    /// run (GStreamer factories, external programs); part of `test`.
    RuntimePackages,
    /// Coverage-guided fuzzing (libFuzzer, stable toolchain) of the
    /// parsers of untrusted input, seeded with the test files.
    Fuzz(FuzzArgs),
    /// Regenerate the committed FlatBuffers Rust code from the schemas.
    FlatcRegen(FlatcArgs),
    /// Check that regenerating the FlatBuffers Rust code changes nothing.
    FlatcCheck(FlatcArgs),
    /// Regenerate the C API's header (guest-driver-shim/capi/include/mediaredir.h)
    /// with cbindgen from the C API's source and the protocol's numbers.
    CbindgenRegen,
    /// Check that regenerating the C API's header changes nothing.
    CbindgenCheck,
    /// The project's test command: setup, flatc check, fmt, clippy, tests,
    /// a smoke run of the benchmark; timed.
    Test,
    /// The redirection-vs-re-encode benchmark: host CPU, network bytes and
    /// picture quality of a Spice desktop without redirection against
    /// redirection through the daemon, scale, calls and the data-path
    /// benchmark; prints tables and, as the last line, one JSON object. A
    /// full run writes that JSON to docs/bench/latest.json and renders the
    /// results block of docs/bench.md from it.
    Bench(BenchArgs),
    /// Provide a QEMU able to create the media-redirection device: the
    /// system's if it can, else Debian's 10.0.2 patched with
    /// qemu-config/patches, built once and cached outside the repository.
    Qemu(QemuArgs),
    /// End-to-end demo: play a clip with redir-play through the daemon,
    /// decode it in verify mode, compare with a local decode; prints one
    /// JSON summary as the last line.
    Demo(DemoArgs),
    /// One demo run with the binaries built: what `demo --matrix` starts
    /// for each of its runs, several at a time, each with its own log.
    #[command(hide = true)]
    DemoRun(DemoRunArgs),
    /// The VM tests alone (the `vm` step of `test`): QEMU boots a guest that
    /// plays clips through the device over virtio-pci; bit-exact checks,
    /// daemon restart, guest reset, the viewer over the guest's desktop.
    Vm(VmArgs),
    /// Run a command of the project (default: `cargo xtask test`) in a fresh
    /// Debian 12 root made with debootstrap (cached): a clone of HEAD, the
    /// host's Rust toolchain read-only, cold crates; as root only.
    FreshCheck(FreshCheckArgs),
}

/// Options of `fresh-check`.
#[derive(Debug, Args)]
struct FreshCheckArgs {
    /// Lay the working tree (uncommitted changes, untracked files that are
    /// not ignored) over the clone of HEAD.
    #[arg(long)]
    worktree: bool,
    /// Make the cached base root anew with debootstrap.
    #[arg(long)]
    rebuild_base: bool,
    /// Keep the root afterwards (its path is printed).
    #[arg(long)]
    keep: bool,
    /// The Debian mirror debootstrap downloads from (apt in the root uses
    /// the host's sources).
    #[arg(long, default_value = fresh::DEFAULT_MIRROR)]
    mirror: String,
    /// The command, run in the project's directory in the root (default:
    /// cargo xtask test).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<String>,
}

/// Options of `demo`.
#[derive(Debug, Args)]
struct DemoArgs {
    /// The clip to play (default: a generated 2 s VP9 + Opus WebM).
    #[arg(long, value_name = "FILE", conflicts_with = "matrix")]
    input: Option<PathBuf>,
    /// Play every clip of the codec and container matrix
    /// (tests/data/clip-matrix.txt), each generated first.
    #[arg(long)]
    matrix: bool,
    /// Where the daemon sends the media: the in-process engine,
    /// media-client on a Unix socket or loopback TCP, or media-client as a
    /// Spice client of the daemon's Spice server.
    #[arg(long, value_enum, default_value = "local", conflicts_with = "matrix")]
    uplink: demo::DemoUplink,
    /// What plays the file in the guest: redir-play (the project's
    /// demuxers) or a GStreamer playbin with mediaredirsink (GStreamer's
    /// demuxers).
    #[arg(
        long,
        value_enum,
        default_value = "redir-play",
        conflicts_with = "matrix"
    )]
    player: demo::DemoPlayer,
    /// With --matrix: how many runs at a time (default: twice the number
    /// of CPUs: a guest-sink run plays in real time, so a run waits more
    /// than it computes).
    #[arg(long, requires = "matrix", value_parser = clap::value_parser!(u16).range(1..=16))]
    jobs: Option<u16>,
    /// Play in a QEMU guest (virtio-pci, uio_pci_generic) instead of over
    /// vhost-user on the host; the daemon uses the local uplink.
    #[arg(long, conflicts_with_all = ["uplink", "matrix"])]
    vm: bool,
    /// Show the video in the viewer, inside a VM desktop (QEMU with Spice),
    /// on this display, or on a private Xvfb with a screenshot written to
    /// target/demo-viewer.png.
    #[arg(long, conflicts_with_all = ["uplink", "matrix", "vm", "player"])]
    viewer: bool,
    /// The components' logs on the terminal instead of in a file under
    /// target/ (the demo names it).
    #[arg(short, long)]
    verbose: bool,
}

/// Options of `vm`.
#[derive(Debug, Args)]
struct VmArgs {
    /// Only the viewer over the guest's desktop (QEMU's Spice, Xvfb).
    #[arg(long)]
    viewer_only: bool,
}

/// Options of the hidden `demo-run`.
#[derive(Debug, Args)]
struct DemoRunArgs {
    /// The file to play.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Where the daemon sends the media.
    #[arg(long, value_enum)]
    uplink: demo::DemoUplink,
    /// What plays the file in the guest.
    #[arg(long, value_enum)]
    player: demo::DemoPlayer,
    /// Where verify-clip keeps its local decode of the file.
    #[arg(long, value_name = "FILE")]
    reference_cache: Option<PathBuf>,
}

/// Options of `fuzz`.
#[derive(Debug, Args)]
struct FuzzArgs {
    /// Targets to run (default: all).
    targets: Vec<String>,
    /// How long each target runs, in seconds.
    #[arg(long, default_value_t = 60, conflicts_with = "smoke")]
    seconds: u32,
    /// The deterministic short run of `cargo xtask test`: a fixed number
    /// of inputs with a fixed seed, from the seed files alone.
    #[arg(long)]
    smoke: bool,
    /// List the targets and exit.
    #[arg(long)]
    list: bool,
}

/// Options of `qemu`.
#[derive(Debug, Args)]
struct QemuArgs {
    /// Then run the `qemu attach` test step: QEMU creates the device on the
    /// daemon (target/debug/vhost-user-mediaredir), and the same QEMU
    /// serves the VM's Spice desktop (firmware screen, Spice link).
    #[arg(long)]
    attach: bool,
    /// Then run the `qemu qtest` test step: QEMU's qtest of the
    /// `chardev-relay` object (patch 0004) on the same build.
    #[arg(long, conflicts_with = "attach")]
    qtest: bool,
}

/// Options of the benchmark.
#[derive(Debug, Args)]
struct BenchArgs {
    /// A short run (2 s 320x240 clips, N = 1, 2, debug binaries; the
    /// figures mean little), as `cargo xtask test` runs it; writes nothing
    /// under docs/.
    #[arg(long)]
    smoke: bool,
    /// Measure nothing: re-render the results block of docs/bench.md from
    /// docs/bench/latest.json (the last full run's report).
    #[arg(long, conflicts_with = "smoke")]
    render_docs: bool,
    /// Measure one section only (optimised binaries, full-length clips)
    /// and print its figures; writes nothing under docs/. For work on that
    /// section: the committed report comes from a whole run.
    #[arg(long, value_enum, conflicts_with = "render_docs")]
    only: Option<bench::Section>,
}

/// Where the FlatBuffers schemas and the generated code live.
#[derive(Debug, Args)]
struct FlatcArgs {
    /// Directory of the `*.fbs` schemas.
    #[arg(long, default_value = flatc_gen::SCHEMA_DIR)]
    schema_dir: PathBuf,
    /// Directory of the committed `*_generated.rs` files.
    #[arg(long, default_value = flatc_gen::GENERATED_DIR)]
    out_dir: PathBuf,
    /// flatc to use instead of the one `setup` installs (must be 25.12.19).
    #[arg(long)]
    flatc: Option<PathBuf>,
}

impl FlatcArgs {
    /// The flatc given on the command line, or the installed one.
    fn flatc(&self) -> Result<PathBuf> {
        match &self.flatc {
            Some(path) => Ok(path.clone()),
            None => flatc_install::ensure(),
        }
    }

    /// The directories as [`flatc_gen::Dirs`].
    fn dirs(&self) -> flatc_gen::Dirs {
        flatc_gen::Dirs {
            schema_dir: self.schema_dir.clone(),
            out_dir: self.out_dir.clone(),
        }
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the xtask crate lives in a subdirectory of the workspace")
}

/// Runs one task from the workspace root; returns xtask's exit status.
fn run(cli: Cli) -> Result<ExitCode> {
    let root = workspace_root();
    std::env::set_current_dir(root)
        .with_context(|| format!("cannot enter the workspace root {}", root.display()))?;
    let done = match cli.task {
        Task::FreshCheck(args) => {
            return fresh::run(&fresh::Options {
                command: args.command,
                worktree: args.worktree,
                rebuild_base: args.rebuild_base,
                keep: args.keep,
                mirror: args.mirror,
            });
        }
        Task::Setup => setup::run().map(|_flatc| ()),
        Task::RuntimePackages => runtime_deps::check(root, &setup::wanted_packages()),
        Task::Fuzz(args) if args.list => {
            for (name, _) in fuzz::TARGETS {
                println!("{name}");
            }
            Ok(())
        }
        Task::Fuzz(args) => fuzz::run(&fuzz::FuzzOptions {
            targets: args.targets,
            budget: if args.smoke {
                fuzz::Budget::Smoke(fuzz::SMOKE_RUNS)
            } else {
                fuzz::Budget::Seconds(args.seconds)
            },
        }),
        Task::FlatcRegen(args) => flatc_gen::regen(&args.flatc()?, &args.dirs()),
        Task::FlatcCheck(args) => flatc_gen::check(&args.flatc()?, &args.dirs()),
        Task::CbindgenRegen => cbindgen_gen::regen(Path::new(cbindgen_gen::CRATE_DIR)),
        Task::CbindgenCheck => cbindgen_gen::check(Path::new(cbindgen_gen::CRATE_DIR)),
        // Started by `demo --matrix`, inside its scope, with the set-up
        // checked and the binaries built.
        Task::DemoRun(args) => demo::run_built(
            Some(args.input),
            args.uplink,
            args.player,
            args.reference_cache.as_deref(),
            false,
        ),
        // Reads one file and writes one: no set-up, nothing started.
        Task::Bench(args) if args.render_docs => bench::render_docs(),
        task => run_in_scope(task),
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// Runs a task that starts programs of the project (daemons, clients, X
/// servers, QEMU) in a [`scope::RunScope`], so that nothing it starts
/// outlives it, after checking the set-up, so that it works as the first
/// command on a fresh machine.
fn run_in_scope(task: Task) -> Result<()> {
    let scope = scope::RunScope::start()?;
    let result = (|| {
        if !matches!(task, Task::Test) {
            // `test` runs setup as its first, timed step.
            setup::run()?;
        }
        match task {
            Task::Test => test::run(&scope),
            Task::Bench(args) => bench::run(args.smoke, args.only),
            Task::Qemu(args) if args.attach => qemu::attach_check(),
            Task::Qemu(args) if args.qtest => qemu::qtest::run(),
            Task::Qemu(_) => qemu::run(),
            Task::Demo(args) if args.vm => vm::demo(args.input),
            Task::Demo(args) if args.matrix => matrix::run(&matrix::Plan::all(), args.jobs),
            Task::Demo(args) if args.viewer => demo::viewer::run(args.input, args.verbose),
            Task::Demo(args) => {
                let on_screen = std::env::var_os("DISPLAY").is_some() && !test_support::ci();
                demo::run(args.input.clone(), args.uplink, args.player, args.verbose)?;
                // Seeing the video in place is the project's main job: on
                // a machine with a display, the viewer too.
                if on_screen {
                    demo::viewer::run(args.input, args.verbose)?;
                }
                Ok(())
            }
            Task::Vm(args) => vm::run(args.viewer_only),
            Task::Setup
            | Task::RuntimePackages
            | Task::Fuzz(_)
            | Task::FreshCheck(_)
            | Task::DemoRun(_)
            | Task::FlatcRegen(_)
            | Task::FlatcCheck(_)
            | Task::CbindgenRegen
            | Task::CbindgenCheck => Ok(()),
        }
    })();
    let finished = scope.finish();
    match (result, finished) {
        (Ok(()), finished) => finished,
        (Err(err), Ok(())) => Err(err),
        (Err(err), Err(leak)) => Err(err.context(format!("also: {leak:#}"))),
    }
}

fn main() -> ExitCode {
    let result = run(Cli::parse());
    if let Some(signal) = scope::interrupted() {
        eprintln!("error: interrupted by signal {signal}");
        return ExitCode::from(u8::try_from(128 + signal).unwrap_or(255));
    }
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flatc_paths_default_to_the_repository_layout() {
        let cli = Cli::try_parse_from(["xtask", "flatc-check"]).unwrap();
        let Task::FlatcCheck(args) = cli.task else {
            panic!("parsed {:?}", cli.task)
        };
        assert_eq!(args.schema_dir, Path::new("spec/schema"));
        assert_eq!(args.out_dir, Path::new("spec/proto/src/wire/generated"));
        assert!(args.flatc.is_none());
    }

    #[test]
    fn bench_takes_smoke() {
        let cli = Cli::try_parse_from(["xtask", "bench", "--smoke"]).unwrap();
        assert!(matches!(
            cli.task,
            Task::Bench(BenchArgs {
                smoke: true,
                render_docs: false,
                only: None,
            })
        ));
        let cli = Cli::try_parse_from(["xtask", "bench"]).unwrap();
        assert!(matches!(
            cli.task,
            Task::Bench(BenchArgs {
                smoke: false,
                render_docs: false,
                only: None,
            })
        ));
        let cli = Cli::try_parse_from(["xtask", "bench", "--render-docs"]).unwrap();
        assert!(matches!(
            cli.task,
            Task::Bench(BenchArgs {
                render_docs: true,
                ..
            })
        ));
        assert!(Cli::try_parse_from(["xtask", "bench", "--smoke", "--render-docs"]).is_err());
        let cli = Cli::try_parse_from(["xtask", "bench", "--only", "viewer"]).unwrap();
        assert!(matches!(
            cli.task,
            Task::Bench(BenchArgs {
                only: Some(bench::Section::Viewer),
                ..
            })
        ));
    }

    #[test]
    fn fresh_check_takes_a_command_after_its_options() {
        let cli = Cli::try_parse_from([
            "xtask",
            "fresh-check",
            "--keep",
            "--",
            "cargo",
            "xtask",
            "setup",
        ])
        .unwrap();
        let Task::FreshCheck(args) = cli.task else {
            panic!("parsed {:?}", cli.task)
        };
        assert!(args.keep && !args.worktree && !args.rebuild_base);
        assert_eq!(args.command, ["cargo", "xtask", "setup"]);
        assert_eq!(args.mirror, "http://deb.debian.org/debian");

        // The command's own options are not taken for fresh-check's.
        let cli = Cli::try_parse_from(["xtask", "fresh-check", "bash", "-c", "cargo build --keep"])
            .unwrap();
        let Task::FreshCheck(args) = cli.task else {
            panic!("parsed {:?}", cli.task)
        };
        assert!(!args.keep);
        assert_eq!(args.command, ["bash", "-c", "cargo build --keep"]);

        let cli = Cli::try_parse_from(["xtask", "fresh-check", "--worktree"]).unwrap();
        let Task::FreshCheck(args) = cli.task else {
            panic!("parsed {:?}", cli.task)
        };
        assert!(args.worktree && args.command.is_empty());
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("xtask").is_dir());
    }
}
