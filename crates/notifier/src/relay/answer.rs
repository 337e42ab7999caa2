//! What a relay's refusal means, apart from what is done about it: a throttle
//! (the relay, not the message: slow the whole deployment down), a quota or a
//! block (stop sending until it lifts), or something about this message only.

use std::time::Duration;

/// A refusal that is about the relay, not the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayRefusal {
    /// Too fast: send more slowly, after `retry_after` if the relay said.
    Throttle { retry_after: Option<Duration> },
    /// A daily quota, or a block for sending too fast: nothing will go until it lifts.
    Quota,
}

/// Classifies an SMTP reply `code` and its `text` (with its enhanced status
/// code, if any). `None`: about this message only (a full mailbox, a bad
/// address), handled per message as before.
pub fn classify(code: u16, text: &str) -> Option<RelayRefusal> {
    let lower = text.to_ascii_lowercase();
    let enhanced = enhanced_code(&lower);
    let quota = matches!(enhanced, Some("5.4.5" | "5.2.251"))
        || lower.contains("quotaexceeded")
        || lower.contains("quota exceeded")
        || (lower.contains("daily") && (lower.contains("limit") || lower.contains("quota")));
    if quota {
        return Some(RelayRefusal::Quota);
    }
    if !(400..500).contains(&code) {
        return None;
    }
    let throttle_code =
        enhanced.is_some_and(|enhanced| enhanced.starts_with("4.7.") || enhanced == "4.3.2" || enhanced == "4.2.1");
    const THROTTLE_WORDS: [&str; 8] = [
        "throttl",
        "rate limit",
        "sending rate",
        "message rate",
        "rate exceeded",
        "too many",
        "slow down",
        "concurrent connections",
    ];
    let throttle_words = THROTTLE_WORDS.iter().any(|words| lower.contains(words));
    (code == 421 || throttle_code || throttle_words).then(|| RelayRefusal::Throttle {
        retry_after: retry_after(&lower),
    })
}

/// The enhanced status code (RFC 3463) at the start of the text, if any: `4.7.0`.
fn enhanced_code(text: &str) -> Option<&str> {
    let first = text.split_whitespace().next()?;
    let mut parts = first.split('.');
    let valid = parts.next().is_some_and(|class| matches!(class, "2" | "4" | "5"))
        && parts.clone().count() == 2
        && parts.all(|part| !part.is_empty() && part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit()));
    valid.then_some(first)
}

/// "try again in 30 seconds", "retry after 2 minutes", "wait 10s".
fn retry_after(text: &str) -> Option<Duration> {
    if !["again", "retry", "wait"].iter().any(|word| text.contains(word)) {
        return None;
    }
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .collect();
    words.iter().enumerate().find_map(|(at, word)| {
        let digits: String = word.chars().take_while(char::is_ascii_digit).collect();
        let count: u64 = digits.parse().ok()?;
        let unit = match &word[digits.len()..] {
            "" => words.get(at + 1).copied().unwrap_or(""),
            rest => rest,
        };
        let seconds = if unit.starts_with("min") || unit == "m" {
            count.checked_mul(60)?
        } else if unit.starts_with("sec") || unit == "s" {
            count
        } else {
            return None;
        };
        Some(Duration::from_secs(seconds))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn throttle(retry_after: Option<Duration>) -> Option<RelayRefusal> {
        Some(RelayRefusal::Throttle { retry_after })
    }

    #[test]
    fn the_relays_throttling_answers_are_throttles() {
        let cases = [
            (
                454,
                "Throttling failure: Maximum sending rate exceeded.",
                throttle(None),
            ),
            (
                432,
                "4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending",
                throttle(None),
            ),
            (450, "4.7.1 Error: too much mail from 10.0.0.1", throttle(None)),
            (
                451,
                "4.7.0 Temporary server error. Please try again later",
                throttle(None),
            ),
            (
                421,
                "4.7.0 Try again in 30 seconds",
                throttle(Some(Duration::from_secs(30))),
            ),
            (
                421,
                "Service not available, closing transmission channel",
                throttle(None),
            ),
            (
                450,
                "4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages",
                throttle(None),
            ),
            (
                451,
                "Too many messages, slow down; retry after 2 minutes",
                throttle(Some(Duration::from_secs(120))),
            ),
            (
                452,
                "rate limit reached, wait 10s",
                throttle(Some(Duration::from_secs(10))),
            ),
        ];
        for (code, text, expected) in cases {
            assert_eq!(classify(code, text), expected, "{code} {text}");
        }
    }

    #[test]
    fn a_quota_or_a_block_stops_the_relay() {
        let cases = [
            (
                554,
                "5.2.0 Message rejected: Sending QuotaExceeded: Daily message quota exceeded.",
            ),
            (550, "5.4.5 Daily user sending quota exceeded."),
            (
                550,
                "5.2.251 Sender throttled due to continuous invalid recipients errors",
            ),
            (451, "4.7.0 daily sending limit reached"),
        ];
        for (code, text) in cases {
            assert_eq!(classify(code, text), Some(RelayRefusal::Quota), "{code} {text}");
        }
    }

    #[test]
    fn an_answer_about_the_message_is_the_messages_business() {
        let cases = [
            (450, "4.2.2 Mailbox full"),
            (451, "4.3.0 Temporary local problem"),
            (452, "4.3.1 Insufficient system storage"),
            (550, "5.1.1 User unknown"),
            (554, "5.7.1 Relay access denied"),
            (
                450,
                "Requested mail action not taken: mailbox unavailable; generate a new one",
            ),
        ];
        for (code, text) in cases {
            assert_eq!(classify(code, text), None, "{code} {text}");
        }
    }
}
