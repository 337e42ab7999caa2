//! Which language an email is written in.

use super::catalogue::{self, Catalogue};

/// The languages the emails are written in. Adding one: a catalogue file
/// under `catalogue/`, a variant here, and its snapshots (see the README).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    English,
    French,
    German,
    Spanish,
}

impl Language {
    pub const ALL: [Self; 4] = [Self::English, Self::French, Self::German, Self::Spanish];

    /// The BCP 47 tag, as in `Content-Language` and the HTML `lang` attribute.
    pub fn tag(self) -> &'static str {
        match self {
            Self::English => "en",
            Self::French => "fr",
            Self::German => "de",
            Self::Spanish => "es",
        }
    }

    pub fn from_tag(tag: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|language| language.tag().eq_ignore_ascii_case(tag))
    }

    pub(super) fn catalogue(self) -> &'static Catalogue {
        match self {
            Self::English => &catalogue::ENGLISH,
            Self::French => &catalogue::FRENCH,
            Self::German => &catalogue::GERMAN,
            Self::Spanish => &catalogue::SPANISH,
        }
    }

    /// The language for a recipient: their locale if we write it, else the
    /// tenant's default locale, else English. Each locale is looked up as
    /// RFC 4647 does, dropping subtags from the end (`fr-CA` → `fr`).
    pub fn for_locales(user_locale: &str, tenant_default: &str) -> Self {
        [user_locale, tenant_default]
            .into_iter()
            .find_map(Self::lookup)
            .unwrap_or(Self::English)
    }

    fn lookup(locale: &str) -> Option<Self> {
        let mut range = locale;
        loop {
            if range.is_empty() {
                return None;
            }
            if let Some(language) = Self::from_tag(range) {
                return Some(language);
            }
            range = range.rsplit_once('-').map_or("", |(shorter, _)| shorter);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Language::{self, *};

    #[test]
    fn the_user_locale_comes_first_then_the_tenant_default_then_english() {
        assert_eq!(Language::for_locales("fr-CA", "de-DE"), French, "fr-CA → fr");
        assert_eq!(Language::for_locales("FR", ""), French, "tags are case-insensitive");
        assert_eq!(
            Language::for_locales("xx", "es-ES"),
            Spanish,
            "unknown user locale → tenant default"
        );
        assert_eq!(
            Language::for_locales("", "de-AT"),
            German,
            "no user locale → tenant default"
        );
        assert_eq!(
            Language::for_locales("xx", "yy-ZZ"),
            English,
            "neither written → English"
        );
        assert_eq!(Language::for_locales("", ""), English);
        assert_eq!(
            Language::for_locales("en-GB", "fr-FR"),
            English,
            "en-GB → en, before the tenant"
        );
        assert_eq!(
            Language::for_locales("zh-Hant-TW", "fr"),
            French,
            "every subtag dropped, then the tenant"
        );
        assert_eq!(Language::for_locales("frx", "es"), Spanish, "a prefix is not a subtag");
    }

    #[test]
    fn tags_round_trip() {
        for language in Language::ALL {
            assert_eq!(Language::from_tag(language.tag()), Some(language));
        }
        assert_eq!(Language::from_tag(""), None);
    }
}
