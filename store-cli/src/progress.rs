//! A one-line progress display on stderr (`label: 12.0 / 96.0 MB, 40.2 MB/s`), redrawn five
//! times a second on a terminal, printed once at the end otherwise; silent when hidden.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Progress of one step at a time.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    visible: bool,
    live: bool,
    done: AtomicU64,
    total: AtomicU64,
    running: AtomicBool,
    step: Mutex<(String, Instant)>,
}

fn mb(n: u64) -> f64 {
    n as f64 / 1e6
}

impl Progress {
    /// Shown on stderr.
    pub fn shown() -> Progress {
        Progress::new(true)
    }

    /// Never shown (tests, `--quiet`).
    pub fn hidden() -> Progress {
        Progress::new(false)
    }

    fn new(visible: bool) -> Progress {
        Progress {
            inner: Arc::new(Inner {
                visible,
                live: visible && std::io::stderr().is_terminal(),
                done: AtomicU64::new(0),
                total: AtomicU64::new(0),
                running: AtomicBool::new(false),
                step: Mutex::new((String::new(), Instant::now())),
            }),
        }
    }

    fn line(&self) -> String {
        let (label, started) = self
            .inner
            .step
            .lock()
            .map(|s| (s.0.clone(), s.1))
            .unwrap_or_else(|_| (String::new(), Instant::now()));
        let done = self.inner.done.load(Ordering::Relaxed);
        let total = self.inner.total.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        format!(
            "{label}: {:.1} / {:.1} MB, {:.1} MB/s",
            mb(done),
            mb(total),
            mb(done) / secs
        )
    }

    /// Starts a step of `total` bytes.
    pub fn start(&self, label: &str, total: u64) {
        if let Ok(mut step) = self.inner.step.lock() {
            *step = (label.to_owned(), Instant::now());
        }
        self.inner.done.store(0, Ordering::Relaxed);
        self.inner.total.store(total, Ordering::Relaxed);
        if self.inner.live && !self.inner.running.swap(true, Ordering::SeqCst) {
            let me = self.clone();
            tokio::spawn(async move {
                while me.inner.running.load(Ordering::SeqCst) {
                    eprint!("\r{}\x1b[K", me.line());
                    let _ = std::io::stderr().flush();
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            });
        }
    }

    pub fn add(&self, bytes: u64) {
        self.inner.done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Ends the step: its last line stays.
    pub fn finish(&self) {
        self.inner.running.store(false, Ordering::SeqCst);
        if self.inner.live {
            eprintln!("\r{}\x1b[K", self.line());
        } else if self.inner.visible {
            eprintln!("{}", self.line());
        }
    }

    /// A line of its own.
    pub fn say(&self, text: &str) {
        if self.inner.visible {
            eprintln!("{text}");
        }
    }
}
