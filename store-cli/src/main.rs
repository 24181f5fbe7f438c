//! `store-cli push | install | update`: see the crate's documentation and the README.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use store_cli::client::Client;
use store_cli::progress::Progress;
use store_cli::{pull, push};

#[derive(Parser)]
#[command(
    version,
    about = "Push builds to the store as chunks; install and update them."
)]
struct Cli {
    /// The store's address.
    #[arg(
        long,
        env = "STORE_URL",
        default_value = "https://127.0.0.1:8443",
        global = true
    )]
    url: String,
    /// A PEM file of extra certificate authorities to trust (a private store, e.g. `cargo xtask
    /// dev`'s `target/dev/tls/ca.crt`).
    #[arg(long, env = "STORE_CA_CERT", global = true)]
    ca_cert: Option<PathBuf>,
    /// Sign in with this e-mail (the password from `STORE_PASSWORD`).
    #[arg(long, env = "STORE_EMAIL", global = true)]
    email: Option<String>,
    #[arg(long, env = "STORE_PASSWORD", hide_env_values = true, global = true)]
    password: Option<String>,
    /// Or use this access token as it is.
    #[arg(long, env = "STORE_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Transfers (and files chunked) at once.
    #[arg(long, default_value_t = 4, global = true)]
    jobs: usize,
    /// No progress display.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publisher: pushes a directory as a new build of a product, uploading only the chunks
    /// the store does not have.
    Push(PushArgs),
    /// Buyer: installs a product of your library (its current build) into a directory.
    Install {
        #[arg(long)]
        product: String,
        #[arg(long)]
        platform: String,
        #[arg(long)]
        dir: PathBuf,
    },
    /// Buyer: updates an installed directory to its current build.
    Update {
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Args)]
struct PushArgs {
    #[arg(long)]
    product: String,
    #[arg(long)]
    dir: PathBuf,
    /// One of the product's platforms.
    #[arg(long)]
    platform: String,
    /// The build's version label, unique per product and platform.
    #[arg(long = "version-label")]
    version: String,
    #[arg(long, default_value = "")]
    release_notes: String,
    /// Name of the tar archive browsers download (default `{slug}-{version}.tar`).
    #[arg(long)]
    file_name: Option<String>,
    /// Make it the platform's current build.
    #[arg(long)]
    make_current: bool,
}

impl PushArgs {
    /// What `push` is asked to do, with `jobs` transfers at once.
    fn options(self, jobs: usize) -> push::PushOptions {
        push::PushOptions {
            product: self.product,
            dir: self.dir,
            platform: self.platform,
            version: self.version,
            release_notes: self.release_notes,
            file_name: self.file_name,
            make_current: self.make_current,
            jobs,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let ca = cli
        .ca_cert
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let client = Client::new(&cli.url, ca.as_deref())?;
    match (&cli.token, &cli.email, &cli.password) {
        (Some(token), _, _) => client.use_token(token).await,
        (None, Some(email), Some(password)) => client
            .sign_in(email, password)
            .await
            .context("signing in")?,
        _ => anyhow::bail!("sign in: set STORE_TOKEN, or STORE_EMAIL and STORE_PASSWORD"),
    }
    let progress = if cli.quiet {
        Progress::hidden()
    } else {
        Progress::shown()
    };
    match cli.command {
        Command::Push(args) => {
            let opts = args.options(cli.jobs);
            let r = push::push(&client, &opts, &progress).await?;
            println!(
                "build {} ({}): {} files, {} bytes, {} chunks; uploaded {} chunks, {} bytes ({} before compression)",
                r.build["id"].as_str().unwrap_or("?"),
                r.build["versionLabel"].as_str().unwrap_or("?"),
                r.files,
                r.bytes,
                r.chunks,
                r.uploaded_chunks,
                r.uploaded_bytes,
                r.uploaded_raw_bytes,
            );
        }
        Command::Install {
            product,
            platform,
            dir,
        } => {
            let r = pull::install(&client, &product, &platform, &dir, cli.jobs, &progress).await?;
            report(&r);
        }
        Command::Update { dir } => {
            let r = pull::update(&client, &dir, cli.jobs, &progress).await?;
            report(&r);
        }
    }
    Ok(())
}

fn report(r: &pull::PullReport) {
    if r.changed {
        println!(
            "build {} ({}) installed: {} files written, {} removed; downloaded {} chunks, {} bytes; {} chunks taken from the files on disk",
            r.build,
            r.version,
            r.files_written,
            r.files_removed,
            r.chunks_downloaded,
            r.bytes_downloaded,
            r.chunks_reused
        );
    } else {
        println!("build {} ({}) is installed already", r.build, r.version);
    }
}
