//! What each kind of email says. Only `WELCOME` and `PIN_RESET` templates have a
//! `pin` field, so no other kind can show a PIN: referencing it in their
//! templates is a compile error, not a runtime check.

use askama::Template;
use dialin_proto::notifier::v1::EmailKind;
use secrecy::{ExposeSecret, SecretString};

/// The languages the templates are written in.
const LANGUAGES: &[&str] = &["en"];

/// The language of a user's email: their locale if it is written, else the
/// tenant's default locale, each tried in full and then by its primary
/// language (`fr-CA` → `fr`), else English.
pub fn language_for(user_locale: &str, tenant_default: &str) -> &'static str {
    [user_locale, tenant_default]
        .into_iter()
        .filter(|locale| !locale.is_empty())
        .flat_map(|locale| [locale, locale.split('-').next().unwrap_or(locale)])
        .find_map(|candidate| {
            LANGUAGES
                .iter()
                .find(|language| language.eq_ignore_ascii_case(candidate))
        })
        .copied()
        .unwrap_or("en")
}

/// Conference details every kind but `DISABLED` shows.
pub struct Details {
    pub conference_id: String,
    pub toll_number: String,
    pub toll_free_number: String,
}

/// One rendered email.
pub struct Rendered {
    pub subject: &'static str,
    pub text: String,
    pub html: String,
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

pub fn subject(kind: EmailKind) -> &'static str {
    match kind {
        EmailKind::Welcome => "Your dial-in conferencing details",
        EmailKind::PinReset => "Your dial-in PIN has been reset",
        EmailKind::SettingsChanged => "Your dial-in conferencing details have changed",
        EmailKind::Disabled => "Dial-in conferencing has been turned off for you",
        EmailKind::ConferenceInfo => "Your dial-in conferencing information",
        EmailKind::Unspecified => "",
    }
}

pub fn render(
    kind: EmailKind,
    greeting_name: &str,
    details: &Details,
    pin: Option<&SecretString>,
) -> Result<Rendered, RenderError> {
    let pin = || pin.map(|pin| pin.expose_secret()).ok_or(RenderError::MissingPin(kind));
    let (text, html) = match kind {
        EmailKind::Welcome => {
            let pin = pin()?;
            (
                WelcomeText {
                    greeting_name,
                    details,
                    pin,
                }
                .render()?,
                WelcomeHtml {
                    greeting_name,
                    details,
                    pin,
                }
                .render()?,
            )
        }
        EmailKind::PinReset => {
            let pin = pin()?;
            (
                PinResetText {
                    greeting_name,
                    details,
                    pin,
                }
                .render()?,
                PinResetHtml {
                    greeting_name,
                    details,
                    pin,
                }
                .render()?,
            )
        }
        EmailKind::SettingsChanged => (
            SettingsChangedText { greeting_name, details }.render()?,
            SettingsChangedHtml { greeting_name, details }.render()?,
        ),
        EmailKind::Disabled => (
            DisabledText { greeting_name }.render()?,
            DisabledHtml { greeting_name }.render()?,
        ),
        EmailKind::ConferenceInfo => (
            ConferenceInfoText { greeting_name, details }.render()?,
            ConferenceInfoHtml { greeting_name, details }.render()?,
        ),
        EmailKind::Unspecified => return Err(RenderError::UnknownKind(kind)),
    };
    Ok(Rendered {
        subject: subject(kind),
        text,
        html,
    })
}

#[derive(Template)]
#[template(path = "welcome.txt")]
struct WelcomeText<'a> {
    greeting_name: &'a str,
    details: &'a Details,
    pin: &'a str,
}

#[derive(Template)]
#[template(path = "welcome.html")]
struct WelcomeHtml<'a> {
    greeting_name: &'a str,
    details: &'a Details,
    pin: &'a str,
}

#[derive(Template)]
#[template(path = "pin_reset.txt")]
struct PinResetText<'a> {
    greeting_name: &'a str,
    details: &'a Details,
    pin: &'a str,
}

#[derive(Template)]
#[template(path = "pin_reset.html")]
struct PinResetHtml<'a> {
    greeting_name: &'a str,
    details: &'a Details,
    pin: &'a str,
}

#[derive(Template)]
#[template(path = "settings_changed.txt")]
struct SettingsChangedText<'a> {
    greeting_name: &'a str,
    details: &'a Details,
}

#[derive(Template)]
#[template(path = "settings_changed.html")]
struct SettingsChangedHtml<'a> {
    greeting_name: &'a str,
    details: &'a Details,
}

#[derive(Template)]
#[template(path = "disabled.txt")]
struct DisabledText<'a> {
    greeting_name: &'a str,
}

#[derive(Template)]
#[template(path = "disabled.html")]
struct DisabledHtml<'a> {
    greeting_name: &'a str,
}

#[derive(Template)]
#[template(path = "conference_info.txt")]
struct ConferenceInfoText<'a> {
    greeting_name: &'a str,
    details: &'a Details,
}

#[derive(Template)]
#[template(path = "conference_info.html")]
struct ConferenceInfoHtml<'a> {
    greeting_name: &'a str,
    details: &'a Details,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(toll_free: &str) -> Details {
        Details {
            conference_id: "1234567".into(),
            toll_number: "+14255550100".into(),
            toll_free_number: toll_free.into(),
        }
    }

    #[test]
    fn pin_kinds_show_the_pin_and_the_others_cannot() {
        let pin = SecretString::from("918273");
        for kind in [EmailKind::Welcome, EmailKind::PinReset] {
            let email = render(kind, "Ann", &details(""), Some(&pin)).unwrap();
            assert!(
                email.text.contains("918273") && email.html.contains("918273"),
                "{kind:?}"
            );
            assert!(
                email.text.contains("1234567") && email.text.contains("+14255550100"),
                "{kind:?}"
            );
            assert!(render(kind, "Ann", &details(""), None).is_err(), "{kind:?} without PIN");
        }
        for kind in [
            EmailKind::SettingsChanged,
            EmailKind::Disabled,
            EmailKind::ConferenceInfo,
        ] {
            let email = render(kind, "Ann", &details(""), Some(&pin)).unwrap();
            assert!(
                !email.text.contains("918273") && !email.html.contains("918273"),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn toll_free_number_shows_only_when_set() {
        let with = render(EmailKind::ConferenceInfo, "Ann", &details("+18005550199"), None).unwrap();
        assert!(with.text.contains("+18005550199") && with.html.contains("tel:+18005550199"));
        let without = render(EmailKind::ConferenceInfo, "Ann", &details(""), None).unwrap();
        assert!(!without.text.contains("Toll-free"));
    }

    #[test]
    fn language_falls_back_from_user_to_tenant_to_english() {
        assert_eq!(language_for("en-GB", "fr-FR"), "en", "en-GB → en");
        assert_eq!(language_for("", "en-US"), "en");
        assert_eq!(language_for("xx", "yy-ZZ"), "en", "nothing written: English");
        assert_eq!(language_for("", ""), "en");
    }

    #[test]
    fn html_escapes_the_name() {
        let email = render(EmailKind::Disabled, "<b>Eve</b>", &details(""), None).unwrap();
        assert!(
            email.html.contains("&#60;b&#62;Eve") || email.html.contains("&lt;b&gt;Eve"),
            "{}",
            email.html
        );
        assert!(email.text.contains("<b>Eve</b>"));
    }

    proptest::proptest! {
        /// Rendering never panics, and a name never reaches the HTML unescaped.
        #[test]
        fn any_name_renders_and_is_escaped_in_html(name in "\\PC{0,80}") {
            let pin = SecretString::from("123456");
            for kind in [EmailKind::Welcome, EmailKind::PinReset, EmailKind::SettingsChanged, EmailKind::Disabled, EmailKind::ConferenceInfo] {
                let email = render(kind, &name, &details("+18005550199"), Some(&pin)).unwrap();
                // The greeting is the one place the name goes: it must not stand there raw
                // (the rest of the page has tags of its own, so look at the greeting itself).
                if name.contains(['<', '>', '&']) {
                    let raw_greeting = format!("<p>Hello {name},</p>");
                    proptest::prop_assert!(!email.html.contains(&raw_greeting));
                    proptest::prop_assert!(email.html.contains("<p>Hello "));
                }
                proptest::prop_assert!(email.text.contains(&name));
            }
        }
    }
}
