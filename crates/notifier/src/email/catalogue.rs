//! Every sentence an email says, one catalogue per language. The templates
//! (`crates/notifier/templates/`) lay them out; they hold no words of their
//! own. A translator copies `catalogue/en.rs` and rewrites each string: a
//! missing one is a compile error, and the snapshot tests show the result.
//!
//! Values (names, numbers, the PIN) are never inside a string: each message is
//! a whole sentence or a label, so no language is forced into English word
//! order around a placeholder.

mod de;
mod en;
mod es;
mod fr;

pub use de::GERMAN;
pub use en::ENGLISH;
pub use es::SPANISH;
pub use fr::FRENCH;

pub struct Catalogue {
    pub welcome_subject: &'static str,
    pub pin_reset_subject: &'static str,
    pub settings_changed_subject: &'static str,
    pub disabled_subject: &'static str,
    pub conference_info_subject: &'static str,

    /// Written before and after the recipient's name: "Hello" + " Ann" + ",".
    pub greeting_before: &'static str,
    pub greeting_after: &'static str,
    /// What ends a label in plain text (French puts a no-break space before it).
    pub colon: &'static str,

    pub conference_id_label: &'static str,
    pub toll_number_label: &'static str,
    pub toll_free_number_label: &'static str,
    pub pin_label: &'static str,
    /// After the numbers: how to join a meeting by phone with them.
    pub how_to_join: &'static str,

    pub welcome_intro: &'static str,
    pub welcome_keep_pin_private: &'static str,
    pub pin_reset_intro: &'static str,
    pub pin_reset_details_unchanged: &'static str,
    pub pin_reset_not_you: &'static str,
    pub settings_changed_intro: &'static str,
    pub settings_changed_next: &'static str,
    pub disabled_intro: &'static str,
    pub disabled_next: &'static str,
    pub conference_info_intro: &'static str,
    pub conference_info_no_pin: &'static str,

    /// Followed by the tenant's sender name, when the tenant set one.
    pub sent_by: &'static str,
    /// The whole line when the tenant set no sender name.
    pub sent_by_default: &'static str,
    pub welcome_why: &'static str,
    pub pin_reset_why: &'static str,
    pub settings_changed_why: &'static str,
    pub disabled_why: &'static str,
    pub conference_info_why: &'static str,
    pub do_not_reply: &'static str,
}
