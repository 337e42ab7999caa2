use super::Catalogue;

// French typography: a no-break space (U+00A0) before a colon.
pub const FRENCH: Catalogue = Catalogue {
    welcome_subject: "Vous pouvez désormais rejoindre vos réunions par téléphone",
    pin_reset_subject: "Votre code PIN d'audioconférence a été réinitialisé",
    settings_changed_subject: "Vos informations d'audioconférence ont changé",
    disabled_subject: "L'audioconférence a été désactivée pour votre compte",
    conference_info_subject: "Vos informations d'audioconférence",

    greeting_before: "Bonjour",
    greeting_after: ",",
    colon: "\u{a0}:",

    conference_id_label: "ID de conférence",
    toll_number_label: "Numéro d'appel",
    toll_free_number_label: "Numéro gratuit",
    pin_label: "Code PIN",
    how_to_join: "Pour rejoindre une réunion par téléphone, appelez l'un de ces numéros, puis saisissez l'ID de conférence et votre code PIN lorsqu'ils vous sont demandés.",

    welcome_intro: "Vous pouvez désormais rejoindre vos réunions par téléphone. Voici vos informations d'accès\u{a0}:",
    welcome_keep_pin_private: "Ne communiquez votre code PIN à personne. Si vous l'oubliez, votre administrateur peut le réinitialiser.",
    pin_reset_intro: "Votre code PIN d'audioconférence a été réinitialisé et l'ancien ne fonctionne plus. Votre nouveau code PIN\u{a0}:",
    pin_reset_details_unchanged: "Votre ID de conférence et vos numéros d'appel restent les mêmes\u{a0}:",
    pin_reset_not_you: "Si vous n'avez pas demandé de nouveau code PIN, prévenez votre administrateur.",
    settings_changed_intro: "Vos informations d'audioconférence ont changé. Désormais, utilisez celles-ci\u{a0}:",
    settings_changed_next: "Votre code PIN ne change pas. Les réunions déjà planifiées peuvent encore afficher les anciennes informations\u{a0}: mettez à jour leurs invitations pour que les participants puissent appeler.",
    disabled_intro: "L'audioconférence a été désactivée pour votre compte. Votre ID de conférence et votre code PIN ne fonctionnent plus, et les réunions que vous organisez n'incluront plus de numéros d'appel.",
    disabled_next: "S'il s'agit d'une erreur, contactez votre administrateur.",
    conference_info_intro: "Votre administrateur vous envoie vos informations d'audioconférence\u{a0}:",
    conference_info_no_pin: "Ce message ne contient pas votre code PIN. Si vous l'avez oublié, demandez à votre administrateur de le réinitialiser.",

    sent_by: "Envoyé par",
    sent_by_default: "Envoyé par le service d'audioconférence de votre organisation.",
    welcome_why: "Vous recevez ce message, car l'audioconférence vient d'être configurée pour vous.",
    pin_reset_why: "Vous recevez ce message, car votre code PIN d'audioconférence a été réinitialisé.",
    settings_changed_why: "Vous recevez ce message, car vos informations d'audioconférence ont changé.",
    disabled_why: "Vous recevez ce message, car l'audioconférence a été désactivée pour votre compte.",
    conference_info_why: "Vous recevez ce message, car un administrateur vous a envoyé vos informations d'audioconférence.",
    do_not_reply: "Ce message a été envoyé automatiquement. Merci de ne pas y répondre.",
};
