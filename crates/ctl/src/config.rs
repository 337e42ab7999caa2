//! Named contexts: an operator who works with several deployments keeps each
//! one's address, token file, CA and tenant in `~/.config/dialin/config.toml`
//! (`$XDG_CONFIG_HOME/dialin/config.toml`, or wherever `DIALIN_CONFIG` points)
//! and picks one with `context use` or `--context`. A setting comes from the
//! flag, else its environment variable, else the context, else the default.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    fmt,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{cli::Globals, failure::Failure};

pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";

/// The config file as it is stored.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// One deployment and tenant to talk to. The token is a file's path, never the token.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// Where a setting in force came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env(&'static str),
    Context(String),
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag => f.write_str("flag"),
            Self::Env(variable) => write!(f, "environment ({variable})"),
            Self::Context(name) => write!(f, "context {name}"),
            Self::Default => f.write_str("default"),
        }
    }
}

/// A setting in force and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub origin: Origin,
}

/// What a command talks to: every setting resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The context in use, if any.
    pub context: Option<String>,
    pub addr: Setting<String>,
    pub token_file: Option<Setting<PathBuf>>,
    pub ca: Option<Setting<PathBuf>>,
    pub tenant: Option<Setting<String>>,
}

/// The config file's path: `DIALIN_CONFIG`, else under `XDG_CONFIG_HOME`, else
/// under `HOME/.config`.
pub fn path(var: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, Failure> {
    let set = |name: &str| var(name).filter(|value| !value.is_empty());
    if let Some(path) = set("DIALIN_CONFIG") {
        return Ok(PathBuf::from(path));
    }
    let base = set("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|home| Path::new(&home).join(".config")))
        .ok_or_else(|| Failure::Usage("no config file: set DIALIN_CONFIG, XDG_CONFIG_HOME or HOME".into()))?;
    Ok(base.join("dialin").join("config.toml"))
}

/// The config file at `path`; none yet is an empty one.
pub fn load(path: &Path) -> Result<ConfigFile, Failure> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            toml::from_str(&text).map_err(|error| Failure::Usage(format!("config file {}: {error}", path.display())))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(error) => Err(Failure::Local(format!("cannot read {}: {error}", path.display()))),
    }
}

pub fn save(path: &Path, file: &ConfigFile) -> Result<(), Failure> {
    let text = toml::to_string_pretty(file).map_err(|error| Failure::Local(format!("config file: {error}")))?;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|error| Failure::Local(format!("cannot create {}: {error}", dir.display())))?;
    }
    std::fs::write(path, text).map_err(|error| Failure::Local(format!("cannot write {}: {error}", path.display())))
}

/// Each setting from the flag or variable, else the context (`--context`,
/// else the file's current one), else the default.
pub fn resolve(globals: &Globals, file: &ConfigFile) -> Result<Target, Failure> {
    let name = globals.context.clone().or_else(|| file.current.clone());
    let context = match &name {
        Some(name) => file.contexts.get(name).cloned().ok_or_else(|| {
            Failure::Usage(format!(
                "no context {name} in the config file; `dialinctl context list` shows them"
            ))
        })?,
        None => Context::default(),
    };
    let origin = || Origin::Context(name.clone().unwrap_or_default());
    fn pick<T: Clone>(
        given: Option<&crate::cli::Given<T>>,
        stored: Option<T>,
        origin: impl Fn() -> Origin,
    ) -> Option<Setting<T>> {
        match given {
            Some(given) => Some(Setting {
                value: given.value.clone(),
                origin: given.origin.clone(),
            }),
            None => stored.map(|value| Setting {
                value,
                origin: origin(),
            }),
        }
    }
    Ok(Target {
        addr: pick(globals.addr.as_ref(), context.addr, origin).unwrap_or_else(|| Setting {
            value: DEFAULT_ADDR.to_owned(),
            origin: Origin::Default,
        }),
        token_file: pick(globals.token_file.as_ref(), context.token_file, origin),
        ca: pick(globals.ca.as_ref(), context.ca, origin),
        tenant: pick(globals.tenant.as_ref(), context.tenant, origin),
        context: name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Given;

    fn file() -> ConfigFile {
        toml::from_str(
            r#"
            current = "prod"
            [contexts.prod]
            addr = "https://dialin.example.com:443"
            token_file = "/home/op/prod-token"
            ca = "/home/op/ca.pem"
            tenant = "contoso"
            [contexts.lab]
            addr = "127.0.0.1:50051"
            "#,
        )
        .unwrap()
    }

    #[test]
    fn a_flag_beats_the_environment_beats_the_context_beats_the_default() {
        let globals = Globals {
            tenant: Some(Given {
                value: "fabrikam".into(),
                origin: Origin::Env("DIALIN_TENANT"),
            }),
            ..Globals::default()
        };
        let target = resolve(&globals, &file()).unwrap();
        assert_eq!(target.context.as_deref(), Some("prod"));
        assert_eq!(target.addr.value, "https://dialin.example.com:443");
        assert_eq!(target.addr.origin, Origin::Context("prod".into()));
        assert_eq!(target.tenant.unwrap().value, "fabrikam");

        let lab = resolve(
            &Globals {
                context: Some("lab".into()),
                ..Globals::default()
            },
            &file(),
        )
        .unwrap();
        assert_eq!(lab.tenant, None);
        assert_eq!(lab.ca, None);

        let nothing = resolve(&Globals::default(), &ConfigFile::default()).unwrap();
        assert_eq!(
            nothing.addr,
            Setting {
                value: DEFAULT_ADDR.into(),
                origin: Origin::Default
            }
        );
    }

    #[test]
    fn an_unknown_context_is_a_usage_error() {
        let globals = Globals {
            context: Some("staging".into()),
            ..Globals::default()
        };
        assert!(matches!(resolve(&globals, &file()), Err(Failure::Usage(message)) if message.contains("staging")));
    }

    #[test]
    fn the_file_is_found_by_variable_then_xdg_then_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| OsString::from(value))
            }
        };
        assert_eq!(
            path(env(&[("DIALIN_CONFIG", "/tmp/c.toml"), ("HOME", "/home/op")])).unwrap(),
            PathBuf::from("/tmp/c.toml")
        );
        assert_eq!(
            path(env(&[("XDG_CONFIG_HOME", "/xdg"), ("HOME", "/home/op")])).unwrap(),
            PathBuf::from("/xdg/dialin/config.toml")
        );
        assert_eq!(
            path(env(&[("XDG_CONFIG_HOME", ""), ("HOME", "/home/op")])).unwrap(),
            PathBuf::from("/home/op/.config/dialin/config.toml")
        );
        assert!(path(env(&[])).is_err());
    }

    #[test]
    fn the_file_round_trips() {
        let text = toml::to_string_pretty(&file()).unwrap();
        assert!(text.starts_with("current = \"prod\""), "{text}");
        assert_eq!(toml::from_str::<ConfigFile>(&text).unwrap(), file());
    }
}
