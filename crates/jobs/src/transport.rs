//! Where emails go: an SMTP server (`SMTP_URL`, plain, no auth: a local relay or a mail
//! catcher) or `.eml` files in `MAIL_DIR`.

use std::{path::Path, time::Duration};

use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::JobError;

/// A configured mail transport. Cheap to clone (the SMTP variant shares its connection pool).
#[derive(Clone)]
pub enum Mailer {
    /// SMTP without TLS.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// One `.eml` file per message.
    File(AsyncFileTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp(_) => f.write_str("Mailer::Smtp"),
            Mailer::File(_) => f.write_str("Mailer::File"),
        }
    }
}

impl Mailer {
    /// SMTP if `smtp_url` is set (`smtp://host[:port]`, port 25 by default), else files in
    /// `mail_dir` (created if missing).
    pub fn from_config(smtp_url: Option<&str>, mail_dir: &Path) -> Result<Self, JobError> {
        match smtp_url.filter(|u| !u.trim().is_empty()) {
            Some(url) => Self::smtp(url),
            None => {
                std::fs::create_dir_all(mail_dir)?;
                Ok(Mailer::File(AsyncFileTransport::new(mail_dir)))
            }
        }
    }

    /// An SMTP transport for `smtp://host[:port]`.
    pub fn smtp(url: &str) -> Result<Self, JobError> {
        let parsed = url::Url::parse(url)
            .map_err(|e| JobError::Invalid(format!("SMTP_URL {url:?}: {e}")))?;
        if parsed.scheme() != "smtp" {
            return Err(JobError::Invalid(format!(
                "SMTP_URL {url:?}: only smtp:// (no TLS, no auth) is supported"
            )));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| JobError::Invalid(format!("SMTP_URL {url:?}: no host")))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(parsed.port().unwrap_or(25))
            .timeout(Some(Duration::from_secs(30)))
            .build();
        Ok(Mailer::Smtp(transport))
    }

    /// Sends `message`. A 5xx reply is [`JobError::MailPermanent`]; anything else that
    /// fails (4xx, connection refused, timeout) is [`JobError::Mail`] and worth a retry.
    pub async fn send(&self, message: Message) -> Result<(), JobError> {
        match self {
            Mailer::Smtp(smtp) => match smtp.send(message).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() => Err(JobError::MailPermanent(e.to_string())),
                Err(e) => Err(JobError::Mail(e.to_string())),
            },
            Mailer::File(file) => {
                file.send(message)
                    .await
                    .map_err(|e| JobError::Mail(e.to_string()))?;
                Ok(())
            }
        }
    }
}
