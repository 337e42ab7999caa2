//! Asking before a change to many users: on a terminal the operator answers
//! y/N; without a terminal to ask on, nothing is changed unless `--yes` says so
//! (a script must say it means it).

use std::io::{BufRead, IsTerminal, Write};

use crate::failure::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Proceed,
    Ask,
    Refuse,
}

pub fn decide(yes: bool, stdin_is_terminal: bool) -> Decision {
    match (yes, stdin_is_terminal) {
        (true, _) => Decision::Proceed,
        (false, true) => Decision::Ask,
        (false, false) => Decision::Refuse,
    }
}

/// Whether an answer to "[y/N]" is a yes.
pub fn accepts(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Goes ahead only if `--yes` was given or the operator says yes to `question`.
pub fn confirm(question: &str, yes: bool) -> Result<(), Failure> {
    match decide(yes, std::io::stdin().is_terminal()) {
        Decision::Proceed => Ok(()),
        Decision::Refuse => Err(Failure::Usage(format!(
            "{question} Not asked: stdin is not a terminal, and nothing was changed; pass --yes to go ahead"
        ))),
        Decision::Ask => {
            eprint!("{question} [y/N] ");
            let _ = std::io::stderr().flush();
            let mut answer = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut answer)
                .map_err(|error| Failure::Local(format!("cannot read the answer: {error}")))?;
            if accepts(&answer) {
                Ok(())
            } else {
                Err(Failure::Local("not confirmed; nothing was changed".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_goes_ahead_a_terminal_is_asked_a_script_is_refused() {
        assert_eq!(decide(true, false), Decision::Proceed);
        assert_eq!(decide(true, true), Decision::Proceed);
        assert_eq!(decide(false, true), Decision::Ask);
        assert_eq!(decide(false, false), Decision::Refuse);
    }

    #[test]
    fn only_y_or_yes_is_a_yes() {
        for answer in ["y\n", "Y", " yes ", "YES\r\n"] {
            assert!(accepts(answer), "{answer:?}");
        }
        for answer in ["", "\n", "n", "no", "yep", "oui"] {
            assert!(!accepts(answer), "{answer:?}");
        }
    }
}
