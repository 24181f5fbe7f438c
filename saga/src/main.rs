//! `saga run <participant>|all`: the saga participants of the store.
//!
//! Each participant (ordering, billing, fulfillment, library, notification) will be a durable
//! JetStream pull consumer writing only its own context's tables. This binary is the skeleton:
//! it knows the participants' names and the command shape; the handlers arrive with the saga issue.

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "saga", version, about = "The store's saga participants")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs one participant, or every participant in this process.
    Run {
        #[arg(value_enum)]
        participant: Which,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Which {
    All,
    Ordering,
    Billing,
    Fulfillment,
    Library,
    Notification,
}

const PARTICIPANTS: [Which; 5] = [
    Which::Ordering,
    Which::Billing,
    Which::Fulfillment,
    Which::Library,
    Which::Notification,
];

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let Cli {
        command: Command::Run { participant },
    } = Cli::parse();
    let selected: Vec<Which> = if participant == Which::All {
        PARTICIPANTS.to_vec()
    } else {
        vec![participant]
    };
    for p in &selected {
        tracing::info!(participant = ?p, "participant has no handlers yet");
    }
    anyhow::bail!("the saga participants are not implemented yet (see the saga issue)")
}
