//! Entry point: parse the command line and hand over to `candor::cli`. Errors end the process with one line.

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = candor::cli::Cli::parse();
    if let Err(e) = candor::cli::run(cli).await {
        eprintln!("candor: {e:#}");
        std::process::exit(1);
    }
}
