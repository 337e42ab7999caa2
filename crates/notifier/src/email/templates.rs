//! The askama templates, a text and an HTML one per kind. Each kind's struct
//! has exactly the fields its email may show.

use askama::Template;

use super::{Catalogue, Language, Letter};

type Pair = Result<(String, String), askama::Error>;

pub fn welcome(t: &Catalogue, language: Language, letter: &Letter, pin: &str) -> Pair {
    let lang = language.tag();
    Ok((
        WelcomeText { t, letter, pin }.render()?,
        WelcomeHtml { t, lang, letter, pin }.render()?,
    ))
}

pub fn pin_reset(t: &Catalogue, language: Language, letter: &Letter, pin: &str) -> Pair {
    let lang = language.tag();
    Ok((
        PinResetText { t, letter, pin }.render()?,
        PinResetHtml { t, lang, letter, pin }.render()?,
    ))
}

pub fn settings_changed(t: &Catalogue, language: Language, letter: &Letter) -> Pair {
    let lang = language.tag();
    Ok((
        SettingsChangedText { t, letter }.render()?,
        SettingsChangedHtml { t, lang, letter }.render()?,
    ))
}

pub fn disabled(t: &Catalogue, language: Language, letter: &Letter) -> Pair {
    let lang = language.tag();
    Ok((
        DisabledText { t, letter }.render()?,
        DisabledHtml { t, lang, letter }.render()?,
    ))
}

pub fn conference_info(t: &Catalogue, language: Language, letter: &Letter) -> Pair {
    let lang = language.tag();
    Ok((
        ConferenceInfoText { t, letter }.render()?,
        ConferenceInfoHtml { t, lang, letter }.render()?,
    ))
}

#[derive(Template)]
#[template(path = "welcome.txt")]
struct WelcomeText<'a> {
    t: &'a Catalogue,
    letter: &'a Letter,
    pin: &'a str,
}

#[derive(Template)]
#[template(path = "welcome.html")]
struct WelcomeHtml<'a> {
    t: &'a Catalogue,
    lang: &'a str,
    letter: &'a Letter,
    pin: &'a str,
}

#[derive(Template)]
#[template(path = "pin_reset.txt")]
struct PinResetText<'a> {
    t: &'a Catalogue,
    letter: &'a Letter,
    pin: &'a str,
}

#[derive(Template)]
#[template(path = "pin_reset.html")]
struct PinResetHtml<'a> {
    t: &'a Catalogue,
    lang: &'a str,
    letter: &'a Letter,
    pin: &'a str,
}

#[derive(Template)]
#[template(path = "settings_changed.txt")]
struct SettingsChangedText<'a> {
    t: &'a Catalogue,
    letter: &'a Letter,
}

#[derive(Template)]
#[template(path = "settings_changed.html")]
struct SettingsChangedHtml<'a> {
    t: &'a Catalogue,
    lang: &'a str,
    letter: &'a Letter,
}

#[derive(Template)]
#[template(path = "disabled.txt")]
struct DisabledText<'a> {
    t: &'a Catalogue,
    letter: &'a Letter,
}

#[derive(Template)]
#[template(path = "disabled.html")]
struct DisabledHtml<'a> {
    t: &'a Catalogue,
    lang: &'a str,
    letter: &'a Letter,
}

#[derive(Template)]
#[template(path = "conference_info.txt")]
struct ConferenceInfoText<'a> {
    t: &'a Catalogue,
    letter: &'a Letter,
}

#[derive(Template)]
#[template(path = "conference_info.html")]
struct ConferenceInfoHtml<'a> {
    t: &'a Catalogue,
    lang: &'a str,
    letter: &'a Letter,
}
