//! `Debug` for the messages that carry a PIN: every field but the PIN, which
//! prints only as whether it is set. A stray `{:?}` can then never leak one.

use std::fmt;

use crate::{notifier::v1::Conference, settings::v1 as settings};

fn pin_state(pin: &str) -> &'static str {
    if pin.is_empty() { "<none>" } else { "<redacted>" }
}

impl fmt::Debug for Conference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conference")
            .field("conference_id", &self.conference_id)
            .field("toll_number", &self.toll_number)
            .field("toll_free_number", &self.toll_free_number)
            .field("pin", &pin_state(&self.pin))
            .finish()
    }
}

macro_rules! user_and_pin_debug {
    ($($message:ident),+) => {$(
        impl fmt::Debug for settings::$message {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($message))
                    .field("user", &self.user)
                    .field("pin", &pin_state(&self.pin))
                    .finish()
            }
        }
    )+};
}

user_and_pin_debug!(AssignLicenseResponse, ResetPinResponse, SetProviderResponse);

impl fmt::Debug for settings::AssignLicenseResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssignLicenseResult")
            .field("user", &self.user)
            .field("pin", &pin_state(&self.pin))
            .field("error", &self.error)
            .finish()
    }
}

impl fmt::Debug for settings::VerifyPinRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyPinRequest")
            .field("tenant_id", &self.tenant_id)
            .field("conference_id", &self.conference_id)
            .field("pin", &pin_state(&self.pin))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_pin() {
        let conference = Conference {
            conference_id: "1234567".into(),
            pin: "98765".into(),
            ..Conference::default()
        };
        let printed = format!("{conference:?}");
        assert!(
            printed.contains("1234567") && printed.contains("<redacted>"),
            "{printed}"
        );
        assert!(!printed.contains("98765"), "{printed}");
        let response = settings::ResetPinResponse {
            user: None,
            pin: "98765".into(),
        };
        assert!(!format!("{response:?}").contains("98765"));
        let verify = settings::VerifyPinRequest {
            tenant_id: "t".into(),
            conference_id: "1234567".into(),
            pin: "98765".into(),
        };
        assert!(!format!("{verify:?}").contains("98765"));
    }
}
