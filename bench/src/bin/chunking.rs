//! Chunking throughput of `store-cli push` against `sha256sum` of the same bytes, in the same
//! run: what it costs to cut a build into content-defined chunks (FastCDC 2020 at 256 KiB /
//! 1 MiB / 4 MiB) and hash every chunk and the whole file (SHA-256), per core, against the
//! floor of reading and hashing the file once.
//!
//! `cargo run --release -p bench --bin chunking [-- MB]` (256 MB of pseudo-random bytes by
//! default, written to a temporary file and read from the page cache by both).

use std::io::Read as _;
use std::process::Command;
use std::time::Instant;

use anyhow::Context as _;
use store_cli::testdata::noise;

fn best_of<T>(runs: usize, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(f64, T)> {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        let v = f()?;
        best = best.min(started.elapsed().as_secs_f64());
        last = Some(v);
    }
    Ok((best, last.context("no run")?))
}

fn main() -> anyhow::Result<()> {
    let mb: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()
        .context("the size in MB")?
        .unwrap_or(256);
    let bytes = noise(mb << 20, 7);
    let path = std::env::temp_dir().join(format!("chunking-bench-{}.bin", std::process::id()));
    std::fs::write(&path, &bytes).context("writing the data")?;
    drop(bytes);
    let size = (mb << 20) as f64 / 1e6;
    let runs = 3;

    // Warm the page cache, then the same file for each.
    std::fs::read(&path).context("reading the data")?;
    let (cdc, chunks) = best_of(runs, || {
        let file = std::fs::File::open(&path)?;
        let reader = std::io::BufReader::with_capacity(1 << 20, file);
        let (_, _, chunks) = store_cli::chunker::chunk_reader(reader, |_| {})?;
        Ok(chunks.len())
    })?;
    let (cut_only, _) = best_of(runs, || {
        let mut data = Vec::new();
        std::fs::File::open(&path)?.read_to_end(&mut data)?;
        let n = fastcdc::v2020::FastCDC::new(&data, 256 << 10, 1 << 20, 4 << 20).count();
        Ok(n)
    })?;
    let (sum, out) = best_of(runs, || {
        let out = Command::new("sha256sum")
            .arg(&path)
            .output()
            .context("running sha256sum (coreutils)")?;
        anyhow::ensure!(out.status.success(), "sha256sum failed");
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    })?;
    let _ = std::fs::remove_file(&path);

    println!("{mb} MiB of pseudo-random bytes, best of {runs}, one core each:");
    println!(
        "  store-cli chunking (FastCDC 2020 + SHA-256 of chunks and file): {:7.1} MB/s  ({chunks} chunks, {:.2} MiB on average)",
        size / cdc,
        mb as f64 / chunks as f64
    );
    println!(
        "  FastCDC cut points only (in memory):                             {:7.1} MB/s",
        size / cut_only
    );
    println!(
        "  sha256sum of the file:                                           {:7.1} MB/s  ({})",
        size / sum,
        out.split_whitespace().next().unwrap_or("?")
    );
    println!("  chunking / sha256sum: {:.2}", (size / cdc) / (size / sum));
    Ok(())
}
