//! Cost of one argon2id password hash at the store's parameters (OWASP: 19 MiB, t = 2, p = 1),
//! through the api's `Hasher` (blocking pool + concurrency cap), one at a time and with every
//! core busy. Baseline: the same work done directly on the calling thread, without the hasher.
//!
//! `cargo run --release -p bench --bin password_hash [-- ROUNDS]`

use std::time::{Duration, Instant};

use api::infra::auth::password::Hasher;

const PASSWORD: &str = "correct horse battery staple";

fn per_op(total: Duration, n: usize) -> f64 {
    total.as_secs_f64() * 1000.0 / n as f64
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    // Baseline: argon2id on this thread, no runtime hop, no semaphore.
    let start = Instant::now();
    for _ in 0..rounds {
        api::infra::auth::password::hash_blocking(PASSWORD)?;
    }
    let direct = start.elapsed();

    let one = Hasher::new(1);
    let start = Instant::now();
    for _ in 0..rounds {
        one.hash(PASSWORD).await?;
    }
    let sequential = start.elapsed();

    let phc = one.hash(PASSWORD).await?;
    let start = Instant::now();
    for _ in 0..rounds {
        one.verify(PASSWORD, &phc).await?;
    }
    let verify = start.elapsed();

    let all = Hasher::new(cores);
    let start = Instant::now();
    let jobs: Vec<_> = (0..rounds * cores)
        .map(|_| {
            let h = all.clone();
            tokio::spawn(async move { h.hash(PASSWORD).await })
        })
        .collect();
    for j in jobs {
        j.await??;
    }
    let parallel = start.elapsed();

    let base = per_op(direct, rounds);
    println!("argon2id m=19456 KiB t=2 p=1, {rounds} rounds, {cores} cores");
    println!("  baseline (direct, one thread)      {base:8.2} ms/hash   1.00x");
    let seq = per_op(sequential, rounds);
    println!(
        "  Hasher, one at a time             {seq:8.2} ms/hash   {:.2}x",
        seq / base
    );
    let ver = per_op(verify, rounds);
    println!(
        "  Hasher verify, one at a time      {ver:8.2} ms/verify {:.2}x",
        ver / base
    );
    let par = per_op(parallel, rounds * cores);
    println!(
        "  Hasher, {cores} at a time (throughput) {par:8.2} ms/hash   {:.2}x  ({:.1} hashes/s)",
        par / base,
        1000.0 / par
    );
    Ok(())
}
