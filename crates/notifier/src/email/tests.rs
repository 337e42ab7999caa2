use dialin_proto::notifier::v1::EmailKind;
use scraper::Html;
use secrecy::SecretString;

use super::*;

const KINDS: [EmailKind; 5] = [
    EmailKind::Welcome,
    EmailKind::PinReset,
    EmailKind::SettingsChanged,
    EmailKind::Disabled,
    EmailKind::ConferenceInfo,
];
const PIN_KINDS: [EmailKind; 2] = [EmailKind::Welcome, EmailKind::PinReset];
const PIN: &str = "918273";

fn letter(name: &str, toll_free: &str) -> Letter {
    Letter {
        recipient_name: name.to_owned(),
        sender_name: Some("Contoso IT".to_owned()),
        details: Details::new("1234567", "+14255550100", toll_free),
    }
}

fn render_all(kind: EmailKind, language: Language) -> Rendered {
    render(
        kind,
        language,
        &letter("Ann Lee", "+18005550199"),
        Some(&SecretString::from(PIN)),
    )
    .unwrap()
}

/// The text a reader of the HTML sees, whitespace collapsed.
fn visible_text(html: &str) -> String {
    let document = Html::parse_document(html);
    let body = document.root_element().text().collect::<Vec<_>>().join(" ");
    collapse(&body)
}

fn collapse(text: &str) -> String {
    text.split(|c: char| c.is_whitespace())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every kind in every language, as reviewers read it: the snapshots under
/// `src/email/snapshots/` are the emails.
#[test]
fn snapshots() {
    for language in Language::ALL {
        for kind in KINDS {
            let email = render_all(kind, language);
            let name = format!("{}_{}", kind.as_str_name().to_lowercase(), language.tag());
            let email = format!(
                "Subject: {}\n\n----- text/plain -----\n{}\n----- text/html -----\n{}",
                email.subject, email.text, email.html
            );
            insta::with_settings!({ omit_expression => true }, {
                insta::assert_snapshot!(name, email);
            });
        }
    }
}

#[test]
fn only_the_pin_kinds_show_the_pin() {
    for language in Language::ALL {
        for kind in KINDS {
            let email = render_all(kind, language);
            let shows_pin = email.text.contains(PIN) || email.html.contains(PIN);
            assert_eq!(shows_pin, PIN_KINDS.contains(&kind), "{kind:?} in {language:?}");
        }
        for kind in PIN_KINDS {
            assert!(
                render(kind, language, &letter("Ann", ""), None).is_err(),
                "{kind:?} without a PIN"
            );
        }
    }
}

/// Once the values they are meant to show (the conference ID and the numbers)
/// are taken out, the PIN-less kinds hold no run of 4 or more digits, in any
/// language and either part.
#[test]
fn no_pin_like_value_in_the_pin_less_kinds() {
    let shown = [
        "123 4567",
        "+1 425-555-0100",
        "+1 800-555-0199",
        "tel:+14255550100",
        "tel:+18005550199",
    ];
    for language in Language::ALL {
        for kind in [
            EmailKind::SettingsChanged,
            EmailKind::Disabled,
            EmailKind::ConferenceInfo,
        ] {
            let email = render_all(kind, language);
            for part in [&email.text, &email.html] {
                let rest = shown
                    .iter()
                    .fold(part.to_string(), |rest, value| rest.replace(value, ""));
                let pin_like = rest.split(|c: char| !c.is_ascii_digit()).find(|run| run.len() >= 4);
                assert_eq!(pin_like, None, "{kind:?} in {language:?}");
            }
        }
    }
}

#[test]
fn every_html_part_is_valid_html5_in_its_language() {
    for language in Language::ALL {
        for kind in KINDS {
            let email = render_all(kind, language);
            let document = Html::parse_document(&email.html);
            assert!(
                document.errors.is_empty(),
                "{kind:?} in {language:?}: {:?}",
                document.errors
            );
            assert!(email.html.contains(&format!("<html lang=\"{}\">", language.tag())));
            assert!(!email.html.contains("<script") && !email.html.contains("<img"));
        }
    }
}

/// The plain-text part says everything the HTML says, and the HTML everything
/// the text says: each line of the text (a label's value alone) is in the HTML.
#[test]
fn the_html_says_everything_the_text_says() {
    for language in Language::ALL {
        let t = language.catalogue();
        let labels = [
            t.conference_id_label,
            t.toll_number_label,
            t.toll_free_number_label,
            t.pin_label,
        ];
        for kind in KINDS {
            let email = render_all(kind, language);
            let html = visible_text(&email.html);
            for line in email
                .text
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && *line != "--")
            {
                let value = labels
                    .iter()
                    .find_map(|label| line.strip_prefix(label)?.strip_prefix(t.colon))
                    .unwrap_or(line);
                assert!(
                    html.contains(&collapse(value)),
                    "{kind:?} in {language:?}: {value:?} is not in the HTML"
                );
            }
            assert!(
                html.contains(&collapse(email.subject)),
                "{kind:?} in {language:?}: title"
            );
        }
    }
}

#[test]
fn numbers_are_readable_and_dialable() {
    let email = render_all(EmailKind::ConferenceInfo, Language::English);
    for part in [&email.text, &email.html] {
        assert!(part.contains("123 4567") && part.contains("+1 425-555-0100") && part.contains("+1 800-555-0199"));
    }
    assert!(email.html.contains("href=\"tel:+14255550100\"") && email.html.contains("href=\"tel:+18005550199\""));

    let without = render(EmailKind::ConferenceInfo, Language::English, &letter("Ann", ""), None).unwrap();
    assert!(!without.text.contains("Toll-free") && !without.html.contains("Toll-free"));
}

#[test]
fn the_sender_is_the_tenant_name_when_it_overrides() {
    let mut plain = letter("Ann", "");
    plain.sender_name = None;
    let email = render(EmailKind::Disabled, Language::French, &plain, None).unwrap();
    assert!(!email.text.contains("Sent by"), "in French");
    assert!(
        email
            .text
            .contains("Envoyé par le service d'audioconférence de votre organisation.")
    );
    let named = render(EmailKind::Disabled, Language::French, &letter("Ann", ""), None).unwrap();
    assert!(named.text.contains("Envoyé par Contoso IT.") && named.html.contains("Envoyé par Contoso IT."));
}

#[test]
fn html_escapes_names() {
    let mut evil = letter("<b>Eve</b> & co", "");
    evil.sender_name = Some("<i>IT</i>".to_owned());
    let email = render(EmailKind::Disabled, Language::English, &evil, None).unwrap();
    assert!(
        !email.html.contains("<b>Eve") && !email.html.contains("<i>IT"),
        "{}",
        email.html
    );
    assert!(visible_text(&email.html).contains("<b>Eve</b> & co"));
    assert!(email.text.contains("Hello <b>Eve</b> & co,"));
}

proptest::proptest! {
    /// Rendering never panics, every name reaches both parts as the reader
    /// should see it, and the HTML stays valid whatever the name holds.
    #[test]
    fn any_name_renders_and_is_escaped_in_html(name in "\\PC{0,80}") {
        let pin = SecretString::from(PIN);
        for kind in KINDS {
            let email = render(kind, Language::German, &letter(&name, "+18005550199"), Some(&pin)).unwrap();
            proptest::prop_assert!(email.text.contains(&name));
            let document = Html::parse_document(&email.html);
            proptest::prop_assert!(document.errors.is_empty(), "{:?}", document.errors);
            proptest::prop_assert!(visible_text(&email.html).contains(&collapse(&name)));
        }
    }
}
