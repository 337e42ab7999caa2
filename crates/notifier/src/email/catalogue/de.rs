use super::Catalogue;

pub const GERMAN: Catalogue = Catalogue {
    welcome_subject: "Sie können jetzt per Telefon an Besprechungen teilnehmen",
    pin_reset_subject: "Ihre PIN für die Telefoneinwahl wurde zurückgesetzt",
    settings_changed_subject: "Ihre Einwahldaten haben sich geändert",
    disabled_subject: "Die Telefoneinwahl wurde für Sie deaktiviert",
    conference_info_subject: "Ihre Einwahldaten für Telefonkonferenzen",

    greeting_before: "Hallo",
    greeting_after: ",",
    colon: ":",

    conference_id_label: "Konferenz-ID",
    toll_number_label: "Einwahlnummer",
    toll_free_number_label: "Gebührenfreie Nummer",
    pin_label: "PIN",
    how_to_join: "Um per Telefon an einer Besprechung teilzunehmen, rufen Sie eine dieser Nummern an und geben Sie nach Aufforderung die Konferenz-ID und Ihre PIN ein.",

    welcome_intro: "Ab sofort können Sie per Telefon an Besprechungen teilnehmen. Hier sind Ihre Einwahldaten:",
    welcome_keep_pin_private: "Geben Sie Ihre PIN nicht weiter. Falls Sie sie vergessen, kann Ihr Administrator sie zurücksetzen.",
    pin_reset_intro: "Ihre PIN für die Telefoneinwahl wurde zurückgesetzt; die bisherige PIN ist nicht mehr gültig. Ihre neue PIN:",
    pin_reset_details_unchanged: "Ihre Konferenz-ID und Ihre Einwahlnummern bleiben unverändert:",
    pin_reset_not_you: "Wenn Sie keine neue PIN angefordert haben, informieren Sie bitte Ihren Administrator.",
    settings_changed_intro: "Ihre Einwahldaten haben sich geändert. Verwenden Sie ab sofort diese Angaben:",
    settings_changed_next: "Ihre PIN bleibt unverändert. Bereits geplante Besprechungen zeigen möglicherweise noch die alten Einwahldaten an. Aktualisieren Sie deren Einladungen, damit sich alle per Telefon einwählen können.",
    disabled_intro: "Die Telefoneinwahl wurde für Sie deaktiviert. Ihre Konferenz-ID und Ihre PIN sind nicht mehr gültig, und von Ihnen organisierte Besprechungen enthalten keine Einwahlnummern mehr.",
    disabled_next: "Falls es sich um einen Irrtum handelt, wenden Sie sich bitte an Ihren Administrator.",
    conference_info_intro: "Ihr Administrator hat Ihnen Ihre Einwahldaten für Telefonkonferenzen gesendet:",
    conference_info_no_pin: "Diese E-Mail enthält Ihre PIN nicht. Falls Sie sie vergessen haben, bitten Sie Ihren Administrator, sie zurückzusetzen.",

    sent_by: "Gesendet von",
    sent_by_default: "Gesendet vom Audiokonferenzdienst Ihrer Organisation.",
    welcome_why: "Sie erhalten diese E-Mail, weil die Telefoneinwahl für Sie eingerichtet wurde.",
    pin_reset_why: "Sie erhalten diese E-Mail, weil Ihre PIN für die Telefoneinwahl zurückgesetzt wurde.",
    settings_changed_why: "Sie erhalten diese E-Mail, weil sich Ihre Einwahldaten geändert haben.",
    disabled_why: "Sie erhalten diese E-Mail, weil die Telefoneinwahl für Sie deaktiviert wurde.",
    conference_info_why: "Sie erhalten diese E-Mail, weil ein Administrator Ihnen Ihre Einwahldaten gesendet hat.",
    do_not_reply: "Diese Nachricht wurde automatisch versendet; Antworten darauf werden nicht gelesen.",
};
