//! Invitation email, the transport only: compose the message, and send it through SMTP
//! (lettre) or as `.eml` files in a directory for local use. What a send's outcome means for the
//! invitation is the domain's ([`crate::domain::delivery`]); draining the outbox is the
//! application layer's delivery loop. Must never import the application layer or the store.

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::Error as SmtpError;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::domain::Role;
pub use crate::domain::delivery::SendOutcome;

/// Where messages go.
#[derive(Clone)]
pub enum Mailer {
    /// A relay, set by one URL: `smtp://host:25` (plain), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS), `smtps://user:pass@host:465` (TLS).
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// One `.eml` file per message in a directory: the embedded default ([`write_atomically`]).
    Files(std::path::PathBuf),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp(_) => f.write_str("Mailer::Smtp"),
            Mailer::Files(dir) => write!(f, "Mailer::Files({})", dir.display()),
        }
    }
}

/// How long one SMTP exchange may take before it counts as a transient failure.
pub const SMTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

impl Mailer {
    pub fn smtp(url: &str) -> anyhow::Result<Mailer> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("invalid SMTP URL: {e}"))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Mailer::Smtp(transport))
    }

    pub fn files(dir: &std::path::Path) -> anyhow::Result<Mailer> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create mail directory {}: {e}", dir.display()))?;
        Ok(Mailer::Files(dir.to_path_buf()))
    }

    pub async fn send(&self, message: Message) -> SendOutcome {
        match self {
            Mailer::Smtp(t) => match t.send(message).await {
                Ok(_) => SendOutcome::Accepted,
                Err(e) => classify(&e),
            },
            Mailer::Files(dir) => {
                let dir = dir.clone();
                let name = format!("{}.eml", uuid::Uuid::new_v4());
                let bytes = message.formatted();
                let written = tokio::task::spawn_blocking(move || {
                    write_atomically(&dir, &name, |f| std::io::Write::write_all(f, &bytes))
                })
                .await;
                match written {
                    Ok(Ok(())) => SendOutcome::Accepted,
                    Ok(Err(e)) => {
                        SendOutcome::Transient(format!("could not write the message file: {e}"))
                    }
                    Err(e) => {
                        SendOutcome::Transient(format!("could not write the message file: {e}"))
                    }
                }
            }
        }
    }
}

/// Writes `dir/name` all or nothing: into a hidden temporary file first, renamed into place only
/// once complete, and removed if anything fails, so that a full disk leaves no empty or partial
/// `.eml` behind (lettre's file transport writes the final file directly). No fsync: this is the
/// local transport, and the outbox row, not the file, is the durable record of the email.
pub fn write_atomically(
    dir: &std::path::Path,
    name: &str,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let partial = dir.join(format!(".{name}.partial"));
    let result = std::fs::File::create_new(&partial)
        .and_then(|mut file| write(&mut file))
        .and_then(|()| std::fs::rename(&partial, dir.join(name)));
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// 5xx replies are permanent; 4xx replies, connection failures and timeouts are transient.
fn classify(e: &SmtpError) -> SendOutcome {
    if e.is_permanent() {
        SendOutcome::Permanent(format!("the mail server refused the message: {e}"))
    } else if e.is_timeout() {
        SendOutcome::Transient(format!("the mail server did not answer in time: {e}"))
    } else {
        SendOutcome::Transient(format!(
            "the mail server could not take the message now: {e}"
        ))
    }
}

/// What an invitation email says.
#[derive(Clone, Debug)]
pub struct Invite<'a> {
    /// The outbox row: names the message (Message-ID) so that a retried send is recognisable.
    pub outbox_id: i64,
    pub invitation_id: &'a str,
    pub to: &'a str,
    pub business_name: &'a str,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
    pub accept_link: String,
    pub resend: bool,
}

/// The acceptance link: the accept page plus the token.
pub fn accept_link(accept_url: &str, token: &str) -> String {
    let sep = if accept_url.contains('?') { '&' } else { '?' };
    format!("{accept_url}{sep}token={token}")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Owner => "an Owner",
        Role::Admin => "an Admin",
        Role::Agent => "an Agent",
    }
}

/// The message, or why it cannot be built (a permanent failure: retrying will not help).
pub fn compose(from: &Mailbox, invite: &Invite<'_>) -> Result<Message, String> {
    let to: Mailbox = invite.to.parse().map_err(|e| {
        format!(
            "the recipient address {:?} is not deliverable: {e}",
            invite.to
        )
    })?;
    let domain = from.email.domain().to_string();
    let expires = invite.expires_at.format("%B %-d, %Y at %H:%M UTC");
    let role = role_name(invite.role);
    let business = invite.business_name;
    let reminder = if invite.resend {
        "This is a new copy of your invitation. "
    } else {
        ""
    };
    let text = format!(
        "Hello,\n\n{business} invited you to join their team on Leadping as {role}.\n\n\
         Accept the invitation: {link}\n\n\
         {reminder}The invitation expires on {expires}. If you were not expecting it, you can ignore this email.\n",
        link = invite.accept_link,
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family: sans-serif\">\
         <p>Hello,</p>\
         <p><strong>{b}</strong> invited you to join their team on Leadping as {role}.</p>\
         <p><a href=\"{l}\">Accept the invitation</a></p>\
         <p>{reminder}The invitation expires on {expires}. If you were not expecting it, you can ignore this email.</p>\
         </body></html>",
        b = html_escape(business),
        l = html_escape(&invite.accept_link),
    );
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(format!("{business} invited you to join Leadping"))
        .message_id(Some(format!(
            "<outbox-{}.{}@{domain}>",
            invite.outbox_id, invite.invitation_id
        )))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| format!("the message cannot be built: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Undoes quoted-printable soft breaks and escapes, so that assertions read the text.
    fn decode_quoted_printable(raw: &str) -> String {
        let joined = raw.replace("=\r\n", "");
        let mut out = String::new();
        let mut rest = joined.as_str();
        while let Some(i) = rest.find('=') {
            out.push_str(&rest[..i]);
            match rest
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(b) => {
                    out.push(b as char);
                    rest = &rest[i + 3..];
                }
                None => {
                    out.push('=');
                    rest = &rest[i + 1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn the_message_names_business_role_expiry_and_link() {
        let from: Mailbox = "Leadping <invitations@leadping.example.com>"
            .parse()
            .unwrap();
        let invite = Invite {
            outbox_id: 42,
            invitation_id: "inv_1",
            to: "ann@example.com",
            business_name: "Acme & Sons",
            role: Role::Admin,
            expires_at: "2026-12-05T10:30:00Z".parse().unwrap(),
            accept_link: accept_link("https://app.example.com/accept", "inv_1.abc"),
            resend: false,
        };
        let raw = decode_quoted_printable(
            &String::from_utf8(compose(&from, &invite).unwrap().formatted()).unwrap(),
        );
        assert!(
            raw.contains("Message-ID: <outbox-42.inv_1@leadping.example.com>"),
            "{raw}"
        );
        assert!(raw.contains("To: ann@example.com"));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain") && raw.contains("text/html"));
        assert!(
            raw.contains("Acme & Sons invited you to join their team on Leadping as an Admin.")
        );
        assert!(raw.contains("Acme &amp; Sons"));
        assert!(raw.contains("https://app.example.com/accept?token=inv_1.abc"));
        assert!(raw.contains("December 5, 2026 at 10:30 UTC"));
        assert_eq!(
            accept_link("https://x.example/a?lang=en", "t"),
            "https://x.example/a?lang=en&token=t"
        );
        assert!(
            compose(
                &from,
                &Invite {
                    to: "not an address",
                    ..invite
                }
            )
            .is_err()
        );
    }
}

#[cfg(test)]
mod file_tests {
    use super::write_atomically;

    #[test]
    fn a_message_file_is_written_whole_or_not_at_all() {
        let dir = std::env::temp_dir().join(format!("leadping-eml-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        write_atomically(&dir, "a.eml", |f| {
            std::io::Write::write_all(f, b"Subject: hi\r\n")
        })
        .unwrap();
        // The disk fills up half-way through the next message.
        let full = write_atomically(&dir, "b.eml", |f| {
            std::io::Write::write_all(f, b"Subject: half")?;
            Err(std::io::Error::from_raw_os_error(28)) // ENOSPC
        });
        assert!(full.is_err());
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["a.eml"], "nothing of the failed message stays");
        assert_eq!(
            std::fs::read(dir.join("a.eml")).unwrap(),
            b"Subject: hi\r\n"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
