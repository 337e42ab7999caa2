//! Input rules shared by both services. Each check returns the message a caller
//! can act on; the service turns it into INVALID_ARGUMENT.

/// Longest id (tenant, user, event, delivery) accepted.
pub const MAX_ID_LEN: usize = 128;
const MAX_EMAIL_LEN: usize = 254;
const MAX_DISPLAY_NAME_LEN: usize = 256;
const MAX_LOCALE_LEN: usize = 35;

pub type Check = Result<(), Invalid>;

/// A field that fails a check: which, and what is wrong with it (a sentence
/// that names the field).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

/// `field` may say more after its name (`provider_name (required for
/// THIRD_PARTY)`): the message keeps it, `Invalid::field` is the name.
fn fail(field: &str, message: String) -> Check {
    Err(Invalid {
        field: field.split(' ').next().unwrap_or(field).to_owned(),
        message,
    })
}

pub fn id(field: &str, value: &str) -> Check {
    if value.trim().is_empty() {
        return fail(field, format!("{field} is required"));
    }
    if value.len() > MAX_ID_LEN {
        return fail(
            field,
            format!(
                "{field} is {} bytes long; at most {MAX_ID_LEN} are allowed",
                value.len()
            ),
        );
    }
    if value.chars().any(char::is_control) {
        return fail(field, format!("{field} must not contain control characters"));
    }
    Ok(())
}

/// An email address as a mail header can carry it: `local@domain` in ASCII
/// (an international domain in its punycode form), no spaces, no control
/// characters, no angle brackets or commas (which would add recipients).
pub fn email(field: &str, value: &str) -> Check {
    let invalid = || {
        fail(
            field,
            format!("{field} {value:?} is not a valid email address (expected name@example.com)"),
        )
    };
    if value.is_empty() {
        return fail(field, format!("{field} is required"));
    }
    if value.len() > MAX_EMAIL_LEN {
        return fail(field, format!("{field} is longer than {MAX_EMAIL_LEN} bytes"));
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return invalid();
    };
    let bad_char = |c: char| !c.is_ascii_graphic() || "<>,;:\"()[]\\@".contains(c);
    if local.is_empty()
        || local.chars().any(bad_char)
        || domain.is_empty()
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
        || domain
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
    {
        return invalid();
    }
    Ok(())
}

/// A person's name as shown in an email header: required, no line breaks or other
/// control characters (they would let a caller inject headers).
pub fn display_name(field: &str, value: &str) -> Check {
    if value.trim().is_empty() {
        return fail(field, format!("{field} is required"));
    }
    if value.chars().count() > MAX_DISPLAY_NAME_LEN {
        return fail(
            field,
            format!("{field} is longer than {MAX_DISPLAY_NAME_LEN} characters"),
        );
    }
    if value.chars().any(char::is_control) {
        return fail(
            field,
            format!("{field} must not contain line breaks or other control characters"),
        );
    }
    Ok(())
}

/// A phone number in E.164 form: `+`, a non-zero digit, 7 to 15 digits in all.
pub fn e164(field: &str, value: &str) -> Check {
    let digits = value.strip_prefix('+').unwrap_or("");
    let valid =
        (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
    if valid {
        Ok(())
    } else {
        fail(
            field,
            format!(
                "{field} {value:?} is not an E.164 phone number (expected + and 7 to 15 digits, e.g. +14255550100)"
            ),
        )
    }
}

/// An ISO 3166-1 alpha-2 country code, such as `US` or `FR`.
pub fn country(field: &str, value: &str) -> Check {
    if value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        fail(
            field,
            format!("{field} {value:?} is not an ISO 3166-1 alpha-2 country code (two capital letters, e.g. US)"),
        )
    }
}

/// A BCP 47 language tag such as `en`, `fr-FR` or `zh-Hant-TW`.
pub fn locale(field: &str, value: &str) -> Check {
    let mut subtags = value.split('-');
    let language_ok = subtags
        .next()
        .is_some_and(|language| (2..=3).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_alphabetic()));
    let rest_ok =
        subtags.all(|subtag| (1..=8).contains(&subtag.len()) && subtag.bytes().all(|b| b.is_ascii_alphanumeric()));
    if language_ok && rest_ok && value.len() <= MAX_LOCALE_LEN {
        Ok(())
    } else {
        fail(
            field,
            format!("{field} {value:?} is not a BCP 47 language tag (e.g. en-US or fr-FR)"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for good in ["a@b.co", "first.last+tag@example.com", "x@localhost"] {
            assert!(email("email", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "@b.co",
            "a@",
            "a b@c.d",
            "a@b..c",
            "a@b.c\r\nBcc: x@y.z",
            "a@b,c@d.e",
            "<a@b.c>",
        ] {
            assert!(email("email", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn phone_numbers() {
        assert!(e164("number", "+14255550100").is_ok());
        assert!(e164("number", "+33170000000").is_ok());
        for bad in [
            "14255550100",
            "+0425555",
            "+1425",
            "+1425555010012345",
            "+1 425 555 0100",
            "+",
        ] {
            assert!(e164("number", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn display_names_refuse_line_breaks() {
        assert!(display_name("display_name", "Zoë O'Brien").is_ok());
        assert!(display_name("display_name", "Eve\r\nBcc: x@y.z").is_err());
        assert!(display_name("display_name", "  ").is_err());
    }

    #[test]
    fn ids_countries_locales() {
        assert!(id("user_id", "u-1").is_ok());
        assert!(id("user_id", "").is_err());
        assert!(id("user_id", &"x".repeat(MAX_ID_LEN + 1)).is_err());
        assert!(country("country", "FR").is_ok());
        assert!(country("country", "fr").is_err());
        assert!(locale("locale", "fr-FR").is_ok());
        assert!(locale("locale", "zh-Hant-TW").is_ok());
        assert!(locale("locale", "f").is_err());
        assert!(locale("locale", "fr_FR").is_err());
    }

    proptest::proptest! {
        /// Whatever arrives, every validator answers (no panic), and what it
        /// accepts is safe to put in a mail header.
        #[test]
        fn validators_never_panic_and_accept_only_header_safe_text(text in "\\PC*|[\\x00-\\x7f]{0,300}") {
            let _ = id("f", &text);
            let _ = e164("f", &text);
            let _ = country("f", &text);
            let _ = locale("f", &text);
            if email("f", &text).is_ok() {
                proptest::prop_assert!(text.is_ascii() && !text.contains(['\r', '\n', ' ', ',', '<', '>']));
            }
            if display_name("f", &text).is_ok() {
                proptest::prop_assert!(!text.chars().any(char::is_control));
            }
        }
    }
}
