//! The entry point the load benches share: `cargo bench` passes `--bench` and gets the full plan;
//! run any other way (e.g. `cargo test --benches`), a bench makes a short smoke run.

use std::future::Future;

/// Runs `bench` with the full or the smoke plan on a multi-threaded runtime; a failure is printed
/// under the bench's `name` and exits 1.
pub fn run<P, F, Fut>(name: &str, full_plan: P, smoke_plan: P, bench: F)
where
    F: FnOnce(P, bool) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let full = std::env::args().any(|arg| arg == "--bench");
    let plan = if full { full_plan } else { smoke_plan };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(error) = runtime.block_on(bench(plan, full)) {
        eprintln!("{name}: FAILED: {error:#}");
        std::process::exit(1);
    }
}
