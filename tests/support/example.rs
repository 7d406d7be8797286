//! The examples as the tests run them: their binaries, which `cargo test` builds into
//! `target/<profile>/examples/` next to the test binaries' `deps/`. A test makes sure
//! the binary is there and up to date with `cargo build --example <name>` (the same
//! profile, features and target directory as the test, so normally a no-op), because
//! `cargo test --test examples` alone does not build the examples.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Lines, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The crate's features this test binary was built with: the example is built with the
/// same, so it shares the library build of `cargo test`.
fn features() -> String {
    let features = [
        ("http", cfg!(feature = "http")),
        ("tower-http", cfg!(feature = "tower-http")),
        ("reqwest", cfg!(feature = "reqwest")),
        ("tonic", cfg!(feature = "tonic")),
        ("metrics", cfg!(feature = "metrics")),
        ("serde", cfg!(feature = "serde")),
        ("redis", cfg!(feature = "redis")),
    ];
    let on: Vec<&str> = features
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
    on.join(",")
}

/// The binary of example `name`, built first if it is missing or out of date.
pub fn path(name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let exe = std::env::current_exe().expect("the test binary's path");
    // <target>/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary sits in <target>/<profile>/deps");
    let binary = profile_dir
        .join("examples")
        .join(name)
        .with_extension(std::env::consts::EXE_EXTENSION);

    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if built.get_or_insert_with(HashSet::new).contains(name) {
        return binary;
    }
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--quiet", "--example", name, "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .arg("--target-dir")
        .arg(profile_dir.parent().expect("<target>/<profile>"))
        .args(["--no-default-features", "--features", &features()]);
    match profile_dir.file_name().and_then(|p| p.to_str()) {
        Some("debug") => {}
        Some("release") => {
            cargo.arg("--release");
        }
        Some(profile) => {
            cargo.args(["--profile", profile]);
        }
        None => panic!("no profile directory in {}", exe.display()),
    }
    let output = cargo.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo build --example {name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        binary.is_file(),
        "no example binary at {}",
        binary.display()
    );
    built
        .as_mut()
        .expect("initialized above")
        .insert(name.to_owned());
    binary
}

/// Runs example `name` with `args` to its end and returns what it printed; kills it
/// and panics if it runs longer than `limit`.
pub fn run(name: &str, args: &[&str], limit: Duration) -> Output {
    run_with_env(name, args, &[], limit)
}

/// [`run`], with `env` set.
pub fn run_with_env(name: &str, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let mut child = Command::new(path(name))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"));
    // Drain both pipes while it runs, so a long output cannot block it.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).map(|_| bytes)
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits for the example") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("example {name} {args:?} still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().expect("reader").expect("its stdout"),
        stderr: stderr.join().expect("reader").expect("its stderr"),
    }
}

/// Starts example `name` (a server that runs until stopped) with `env` set; its
/// standard output is read with [`Running::line`].
pub fn start(name: &str, env: &[(&str, &str)]) -> Running {
    let mut child = Command::new(path(name))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"));
    let stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
    Running {
        child,
        stdout,
        ended: false,
    }
}

/// A running example, killed when dropped (a failing test leaves no process behind).
pub struct Running {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    ended: bool,
}

impl Running {
    /// The next line the example printed.
    pub fn line(&mut self) -> String {
        self.stdout
            .next()
            .expect("the example printed a line")
            .expect("readable output")
    }

    /// Kills the example; whether it ended within 5 s.
    pub fn stop(mut self) -> bool {
        let _ = self.child.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                self.ended = true;
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
