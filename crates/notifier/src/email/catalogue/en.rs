use super::Catalogue;

pub const ENGLISH: Catalogue = Catalogue {
    welcome_subject: "You can now join meetings by phone",
    pin_reset_subject: "Your dial-in PIN has been reset",
    settings_changed_subject: "Your dial-in conferencing details have changed",
    disabled_subject: "Dial-in conferencing has been turned off for you",
    conference_info_subject: "Your dial-in conferencing information",

    greeting_before: "Hello",
    greeting_after: ",",
    colon: ":",

    conference_id_label: "Conference ID",
    toll_number_label: "Dial-in number",
    toll_free_number_label: "Toll-free number",
    pin_label: "PIN",
    how_to_join: "To join a meeting by phone, call one of these numbers, then enter the conference ID and your PIN when asked.",

    welcome_intro: "You can now join meetings by phone. Here are your dial-in details:",
    welcome_keep_pin_private: "Keep your PIN to yourself. If you forget it, your administrator can reset it.",
    pin_reset_intro: "Your dial-in PIN has been reset, and your old PIN no longer works. Your new PIN:",
    pin_reset_details_unchanged: "Your conference ID and dial-in numbers have not changed:",
    pin_reset_not_you: "If you did not ask for a new PIN, tell your administrator.",
    settings_changed_intro: "Your dial-in conferencing details have changed. From now on, use these:",
    settings_changed_next: "Your PIN has not changed. Meetings you have already scheduled may still show the old details: update their invitations so that people can dial in.",
    disabled_intro: "Dial-in conferencing has been turned off for you. Your conference ID and PIN no longer work, and meetings you organise will no longer include dial-in numbers.",
    disabled_next: "If you think this is a mistake, contact your administrator.",
    conference_info_intro: "Your administrator sent you your dial-in conferencing information:",
    conference_info_no_pin: "This email does not include your PIN. If you have forgotten it, ask your administrator to reset it.",

    sent_by: "Sent by",
    sent_by_default: "Sent by your organisation's audio conferencing service.",
    welcome_why: "You are receiving this email because dial-in conferencing was set up for you.",
    pin_reset_why: "You are receiving this email because your dial-in PIN was reset.",
    settings_changed_why: "You are receiving this email because your dial-in details changed.",
    disabled_why: "You are receiving this email because dial-in conferencing was turned off for you.",
    conference_info_why: "You are receiving this email because an administrator sent you your conference information.",
    do_not_reply: "This message was sent automatically; replies to it are not read.",
};
