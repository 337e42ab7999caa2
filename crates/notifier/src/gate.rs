//! The one place that decides whether an email may leave. Automatic emails are
//! gated twice: at intake, on the switch as it was when the change happened
//! (and as it is now), and again just before the SMTP hand-off. Manual sends
//! (CONFERENCE_INFO) are never gated; they never carry a PIN.

use dialin_proto::notifier::v1::Trigger;

use crate::entity::tenant_policy;

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Send,
    Suppress(String),
}

/// At intake: suppressed if the switch was off when the change happened, or is off now.
pub fn at_intake(trigger: Trigger, when_changed: &tenant_policy::Model, now: &tenant_policy::Model) -> Verdict {
    if trigger == Trigger::Manual {
        return Verdict::Send;
    }
    if !when_changed.automatically_send_emails_to_users {
        return Verdict::Suppress(format!(
            "automatic emails to users were switched off for the tenant when the change was made (settings version {})",
            when_changed.version
        ));
    }
    before_send(trigger, now)
}

/// Just before SMTP: suppressed if the switch is off now. A suppressed email is
/// never sent later, even if the switch is turned on again.
pub fn before_send(trigger: Trigger, now: &tenant_policy::Model) -> Verdict {
    if trigger == Trigger::Manual || now.automatically_send_emails_to_users {
        return Verdict::Send;
    }
    Verdict::Suppress(format!(
        "automatic emails to users were switched off for the tenant before this email was sent (settings version {})",
        now.version
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::default_policy;

    fn policy(on: bool, version: i64) -> tenant_policy::Model {
        tenant_policy::Model {
            automatically_send_emails_to_users: on,
            version,
            ..default_policy("t")
        }
    }

    #[test]
    fn automatic_needs_the_switch_on_then_and_now() {
        assert_eq!(
            at_intake(Trigger::Automatic, &policy(true, 1), &policy(true, 1)),
            Verdict::Send
        );
        assert!(
            matches!(at_intake(Trigger::Automatic, &policy(false, 1), &policy(true, 2)), Verdict::Suppress(reason) if reason.contains("when the change was made"))
        );
        assert!(
            matches!(at_intake(Trigger::Automatic, &policy(true, 1), &policy(false, 2)), Verdict::Suppress(reason) if reason.contains("before this email was sent"))
        );
    }

    #[test]
    fn manual_is_never_gated() {
        assert_eq!(
            at_intake(Trigger::Manual, &policy(false, 1), &policy(false, 1)),
            Verdict::Send
        );
        assert_eq!(before_send(Trigger::Manual, &policy(false, 3)), Verdict::Send);
    }
}
