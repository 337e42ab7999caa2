use super::Catalogue;

pub const SPANISH: Catalogue = Catalogue {
    welcome_subject: "Ya puede unirse a sus reuniones por teléfono",
    pin_reset_subject: "Se ha restablecido su PIN de audioconferencia",
    settings_changed_subject: "Han cambiado sus datos de audioconferencia",
    disabled_subject: "Se ha desactivado la audioconferencia en su cuenta",
    conference_info_subject: "Sus datos de audioconferencia",

    // Spanish letters greet with "Hola, Ana:".
    greeting_before: "Hola,",
    greeting_after: ":",
    colon: ":",

    conference_id_label: "Id. de conferencia",
    toll_number_label: "Número de acceso",
    toll_free_number_label: "Número gratuito",
    pin_label: "PIN",
    how_to_join: "Para unirse a una reunión por teléfono, llame a uno de estos números y, cuando se le pida, introduzca el Id. de conferencia y su PIN.",

    welcome_intro: "Ya puede unirse a sus reuniones por teléfono. Estos son sus datos de acceso:",
    welcome_keep_pin_private: "No comparta su PIN con nadie. Si lo olvida, su administrador puede restablecerlo.",
    pin_reset_intro: "Se ha restablecido su PIN de audioconferencia y el anterior ya no funciona. Su nuevo PIN:",
    pin_reset_details_unchanged: "Su Id. de conferencia y sus números de acceso no han cambiado:",
    pin_reset_not_you: "Si no ha solicitado un PIN nuevo, avise a su administrador.",
    settings_changed_intro: "Han cambiado sus datos de audioconferencia. A partir de ahora, use estos:",
    settings_changed_next: "Su PIN no ha cambiado. Es posible que las reuniones que ya ha programado muestren todavía los datos anteriores: actualice sus invitaciones para que los asistentes puedan llamar.",
    disabled_intro: "Se ha desactivado la audioconferencia en su cuenta. Su Id. de conferencia y su PIN ya no funcionan, y las reuniones que organice dejarán de incluir números de acceso.",
    disabled_next: "Si cree que se trata de un error, póngase en contacto con su administrador.",
    conference_info_intro: "Su administrador le ha enviado sus datos de audioconferencia:",
    conference_info_no_pin: "Este mensaje no incluye su PIN. Si lo ha olvidado, pida a su administrador que lo restablezca.",

    sent_by: "Enviado por",
    sent_by_default: "Enviado por el servicio de audioconferencia de su organización.",
    welcome_why: "Recibe este mensaje porque se ha configurado la audioconferencia para usted.",
    pin_reset_why: "Recibe este mensaje porque se ha restablecido su PIN de audioconferencia.",
    settings_changed_why: "Recibe este mensaje porque han cambiado sus datos de audioconferencia.",
    disabled_why: "Recibe este mensaje porque se ha desactivado la audioconferencia en su cuenta.",
    conference_info_why: "Recibe este mensaje porque un administrador le ha enviado sus datos de audioconferencia.",
    do_not_reply: "Este mensaje se ha enviado automáticamente; las respuestas no se leen.",
};
