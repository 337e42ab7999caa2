//! Emails rendered with sample values, for an admin to see what users get:
//! `PreviewEmail` and `dialin-notifier preview`. Never a real PIN.

use dialin_proto::notifier::v1::EmailKind;
use secrecy::SecretString;

use super::{Details, Language, Letter, RenderError, Rendered};

pub const SAMPLE_NAME: &str = "Alex Martin";
pub const SAMPLE_ADDRESS: &str = "alex.martin@example.com";
const SAMPLE_CONFERENCE_ID: &str = "1234567";
const SAMPLE_PIN: &str = "123456";

/// Made-up toll and toll-free numbers in the language's main country, so the
/// preview shows how numbers are written there.
fn sample_numbers(language: Language) -> (&'static str, &'static str) {
    match language {
        Language::English => ("+14255550100", "+18005550199"),
        Language::French => ("+33170000000", "+33805000000"),
        Language::German => ("+4930901820", "+498001234567"),
        Language::Spanish => ("+34910000000", "+34900000000"),
    }
}

/// `kind` in `language`, from the tenant's sender name when it overrides the sender.
pub fn render(kind: EmailKind, language: Language, sender_name: Option<String>) -> Result<Rendered, RenderError> {
    let (toll_number, toll_free_number) = sample_numbers(language);
    let letter = Letter {
        recipient_name: SAMPLE_NAME.to_owned(),
        sender_name,
        details: Details::new(SAMPLE_CONFERENCE_ID, toll_number, toll_free_number),
    };
    super::render(kind, language, &letter, Some(&SecretString::from(SAMPLE_PIN)))
}
