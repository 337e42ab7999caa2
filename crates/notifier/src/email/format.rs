//! How conference details are written for people to read and dial.

use phonenumber::Mode;

/// A phone number as people read it and as a phone dials it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneNumber {
    /// International display format: `+1 425-555-0100`, `+33 1 70 00 00 00`.
    pub display: String,
    /// A `tel:` link target (RFC 3966): `tel:+14255550100`.
    pub href: String,
}

impl PhoneNumber {
    /// `e164` is validated as E.164 where it enters the system; a number the
    /// numbering plan does not know is still shown, as it was written.
    pub fn new(e164: &str) -> Self {
        let display = phonenumber::parse(None, e164)
            .map(|number| number.format().mode(Mode::International).to_string())
            .unwrap_or_else(|_| e164.to_owned());
        Self {
            display,
            href: format!("tel:{e164}"),
        }
    }
}

/// A conference ID grouped for reading aloud and typing: `123 4567`.
pub fn group_conference_id(id: &str) -> String {
    match id.len().checked_sub(4) {
        Some(head) if head > 0 && id.is_ascii() => format!("{} {}", &id[..head], &id[head..]),
        _ => id.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_shown_in_international_format() {
        let cases = [
            ("+14255550100", "+1 425-555-0100"),
            ("+33170000000", "+33 1 70 00 00 00"),
            ("+4930901820", "+49 30 901820"),
            ("+34910000000", "+34 910 00 00 00"),
            ("+442079460000", "+44 20 7946 0000"),
        ];
        for (e164, display) in cases {
            let number = PhoneNumber::new(e164);
            assert_eq!(number.display, display, "{e164}");
            assert_eq!(number.href, format!("tel:{e164}"));
        }
    }

    #[test]
    fn a_number_the_plan_does_not_know_is_shown_as_written() {
        assert_eq!(PhoneNumber::new("+999123").display, "+999123");
    }

    #[test]
    fn conference_ids_are_grouped() {
        assert_eq!(group_conference_id("1234567"), "123 4567");
        assert_eq!(group_conference_id("1234"), "1234");
        assert_eq!(group_conference_id(""), "");
    }
}
