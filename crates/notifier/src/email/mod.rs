//! What each kind of email says, in the recipient's language. The words live in
//! per-language catalogues (`catalogue/`), the layout in one askama template per
//! kind and format (`templates/`). Only the `WELCOME` and `PIN_RESET` templates
//! have a `pin` field, so no other kind can show a PIN: referencing it in their
//! templates is a compile error, not a runtime check.

mod catalogue;
mod format;
mod language;
pub mod preview;
mod templates;

use dialin_proto::notifier::v1::EmailKind;
use secrecy::{ExposeSecret, SecretString};

use self::catalogue::Catalogue;
pub use self::{format::PhoneNumber, language::Language};

/// Everything an email shows except the PIN, formatted for reading.
pub struct Letter {
    pub recipient_name: String,
    /// The tenant's sender name, when the tenant overrides the sender.
    pub sender_name: Option<String>,
    pub details: Details,
}

/// The conference details every kind but `DISABLED` shows.
pub struct Details {
    /// Grouped for reading: `123 4567`.
    pub conference_id: String,
    pub toll_number: PhoneNumber,
    pub toll_free_number: Option<PhoneNumber>,
}

impl Details {
    /// From the values as stored: a 7-digit ID and E.164 numbers (toll-free may be empty).
    pub fn new(conference_id: &str, toll_number: &str, toll_free_number: &str) -> Self {
        Self {
            conference_id: format::group_conference_id(conference_id),
            toll_number: PhoneNumber::new(toll_number),
            toll_free_number: (!toll_free_number.is_empty()).then(|| PhoneNumber::new(toll_free_number)),
        }
    }
}

impl Letter {
    /// Who sent the email: the tenant's sender name, else the service.
    fn sender_line(&self, t: &Catalogue) -> String {
        match &self.sender_name {
            Some(name) => format!("{} {}.", t.sent_by, name.trim_end_matches('.')),
            None => t.sent_by_default.to_owned(),
        }
    }
}

/// One rendered email.
pub struct Rendered {
    pub subject: &'static str,
    pub text: String,
    pub html: String,
    pub language: Language,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{0:?} emails need a PIN and the delivery has none")]
    MissingPin(EmailKind),
    #[error("{0:?} is not an email kind")]
    UnknownKind(EmailKind),
    #[error("template failed: {0}")]
    Template(#[from] askama::Error),
}

pub fn render(
    kind: EmailKind,
    language: Language,
    letter: &Letter,
    pin: Option<&SecretString>,
) -> Result<Rendered, RenderError> {
    let t = language.catalogue();
    let pin = || pin.map(|pin| pin.expose_secret()).ok_or(RenderError::MissingPin(kind));
    let (subject, (text, html)) = match kind {
        EmailKind::Welcome => (t.welcome_subject, templates::welcome(t, language, letter, pin()?)?),
        EmailKind::PinReset => (t.pin_reset_subject, templates::pin_reset(t, language, letter, pin()?)?),
        EmailKind::SettingsChanged => (
            t.settings_changed_subject,
            templates::settings_changed(t, language, letter)?,
        ),
        EmailKind::Disabled => (t.disabled_subject, templates::disabled(t, language, letter)?),
        EmailKind::ConferenceInfo => (
            t.conference_info_subject,
            templates::conference_info(t, language, letter)?,
        ),
        EmailKind::Unspecified => return Err(RenderError::UnknownKind(kind)),
    };
    Ok(Rendered {
        subject,
        text,
        html,
        language,
    })
}

#[cfg(test)]
mod tests;
