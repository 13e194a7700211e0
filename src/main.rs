//! Entry point: parse the command line and hand over to `candor::cli`. Errors end the process with one line.

use clap::Parser;

fn main() {
    // ONNX Runtime's registry build collects usage telemetry for Microsoft: a device id and an event queue under
    // the user's home, uploaded when it can reach the network. Only this variable, read when the library loads,
    // stops all of it; a self-hosted server sends nothing anywhere.
    // SAFETY: the process has one thread here (the runtime starts below), so nothing reads the environment
    // while it changes.
    unsafe { std::env::set_var("ORT_DISABLE_TELEMETRY", "1") };
    let cli = candor::cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the async runtime starts");
    if let Err(e) = runtime.block_on(candor::cli::run(cli)) {
        eprintln!("candor: {e:#}");
        std::process::exit(1);
    }
}
