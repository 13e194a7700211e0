//! Notification emails over SMTP (`lettre`), when `smtp_url` is set: the report is ready (a link, no personal
//! data beyond it), a coach is invited (the invitation link), a password-reset link. Each is sent on its own
//! task, off the request and session paths; a failure is logged and counted (`candor_emails_total`), never shown
//! to anyone as an error.

use std::net::SocketAddr;
use std::sync::Arc;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::Config;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("smtp_url is not a usable SMTP URL: {0}")]
    Url(String),
    #[error("smtp_from is not an email address: {0}")]
    From(String),
}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Where users reach the server, without a trailing slash.
    public_url: String,
    metrics: Arc<Metrics>,
}

impl Mailer {
    /// The mailer `config` asks for, or `None` without `smtp_url`. `bound` is the server's address, for links
    /// when `public_url` is not set.
    pub fn from_config(config: &Config, bound: SocketAddr, metrics: Arc<Metrics>) -> Result<Option<Arc<Self>>, NotifyError> {
        let Some(url) = &config.smtp_url else { return Ok(None) };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret()).map_err(|e| NotifyError::Url(e.to_string()))?.build();
        let from = config.smtp_from.parse().map_err(|e: lettre::address::AddressError| NotifyError::From(e.to_string()))?;
        let public_url = config.public_url.clone().unwrap_or_else(|| format!("http://{bound}"));
        Ok(Some(Arc::new(Self { transport, from, public_url: public_url.trim_end_matches('/').to_string(), metrics })))
    }

    /// Tells a candidate their report is ready: a link to it, nothing else about the interview.
    pub fn report_ready(self: &Arc<Self>, to: &str, interview: &str) {
        let body = format!(
            "Your practice interview report is ready:\n\n{}/report.html?interview={interview}\n\nSign in to read it.\n\n-- Candor\n",
            self.public_url
        );
        self.send("report_ready", to, "Your interview report is ready", body);
    }

    /// Sends a coach the invitation link (`link` is relative to the server).
    pub fn coach_invited(self: &Arc<Self>, to: &str, candidate: &str, role: &str, link: &str) {
        let body = format!(
            "{candidate} invited you to watch their {role} practice interview on Candor, live and its report.\n\n\
             Open this link to accept (it works for a limited time):\n\n{}{link}\n\n-- Candor\n",
            self.public_url
        );
        self.send("coach_invited", to, &format!("{candidate} invited you to coach a practice interview"), body);
    }

    /// Sends the account's owner a password-reset link (`link` is relative to the server).
    pub fn password_reset(self: &Arc<Self>, to: &str, link: &str, valid_minutes: u64) {
        let body = format!(
            "Someone asked to reset the password of your Candor account. To choose a new one, open this link \
             within {valid_minutes} minutes (it works once):\n\n{}{link}\n\n\
             If it was not you, ignore this email: your password stays as it is.\n\n-- Candor\n",
            self.public_url
        );
        self.send("password_reset", to, "Reset your Candor password", body);
    }

    fn send(self: &Arc<Self>, kind: &'static str, to: &str, subject: &str, body: String) {
        let message = to
            .parse::<Mailbox>()
            .map_err(|e| e.to_string())
            .and_then(|to| Message::builder().from(self.from.clone()).to(to).subject(subject).body(body).map_err(|e| e.to_string()));
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(kind, error, "notification not sent");
                self.metrics.emails.with_label_values(&[kind, "invalid"]).inc();
                return;
            }
        };
        let mailer = self.clone();
        tokio::spawn(async move {
            let outcome = match mailer.transport.send(message).await {
                Ok(_) => "sent",
                Err(error) => {
                    tracing::warn!(kind, error = %error, "notification not sent");
                    "failed"
                }
            };
            mailer.metrics.emails.with_label_values(&[kind, outcome]).inc();
        });
    }
}
