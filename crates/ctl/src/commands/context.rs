//! `dialinctl context use | list | set | show`: the named contexts of the
//! config file. `set` takes `--addr`, `--token-file`, `--ca` and `--tenant` as
//! given on its command line (not from the environment), so a context holds
//! only what its author typed.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    cli::{ContextCommand, Given, Globals},
    config::{self, ConfigFile, Context, Origin, Setting},
    failure::Failure,
    output::{Printer, print_json, print_text, render_rows},
};

pub fn run(command: ContextCommand, globals: &Globals, out: &Printer) -> Result<(), Failure> {
    let path = config::path(|name| std::env::var_os(name))?;
    let mut file = config::load(&path)?;
    match command {
        ContextCommand::Use { name } => {
            if !file.contexts.contains_key(&name) {
                return Err(Failure::Usage(format!(
                    "no context {name} in {}; `dialinctl context set {name} --addr …` makes one",
                    path.display()
                )));
            }
            file.current = Some(name.clone());
            config::save(&path, &file)?;
            eprintln!("current context: {name} ({})", path.display());
            Ok(())
        }
        ContextCommand::List => list(&file, out),
        ContextCommand::Set { name } => {
            let made = set(&mut file, &name, globals);
            config::save(&path, &file)?;
            let current = if file.current.as_deref() == Some(name.as_str()) {
                ", the current one"
            } else {
                ""
            };
            eprintln!(
                "context {name} {}{current} ({})",
                if made { "made" } else { "changed" },
                path.display()
            );
            Ok(())
        }
        ContextCommand::Show => show(&config::resolve(globals, &file)?, out),
    }
}

/// Puts what the command line gave into context `name`; makes it the
/// current one when there is none. Whether the context is new.
fn set(file: &mut ConfigFile, name: &str, globals: &Globals) -> bool {
    fn typed<T: Clone>(given: Option<&Given<T>>) -> Option<T> {
        given
            .filter(|given| given.origin == Origin::Flag)
            .map(|given| given.value.clone())
    }
    let made = !file.contexts.contains_key(name);
    let context = file.contexts.entry(name.to_owned()).or_default();
    if let Some(addr) = typed(globals.addr.as_ref()) {
        context.addr = Some(addr);
    }
    if let Some(token_file) = typed(globals.token_file.as_ref()) {
        context.token_file = Some(token_file);
    }
    if let Some(ca) = typed(globals.ca.as_ref()) {
        context.ca = Some(ca);
    }
    if let Some(tenant) = typed(globals.tenant.as_ref()) {
        context.tenant = Some(tenant);
    }
    if file.current.is_none() {
        file.current = Some(name.to_owned());
    }
    made
}

#[derive(Serialize)]
struct Listed<'a> {
    current: Option<&'a str>,
    contexts: &'a BTreeMap<String, Context>,
}

fn list(file: &ConfigFile, out: &Printer) -> Result<(), Failure> {
    if out.is_json() {
        return print_json(&Listed {
            current: file.current.as_deref(),
            contexts: &file.contexts,
        });
    }
    let path = |path: &Option<std::path::PathBuf>| path.as_ref().map(|path| path.display().to_string());
    let mut rows = vec![
        ["CURRENT", "NAME", "ADDR", "TENANT", "TOKEN_FILE", "CA"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for (name, context) in &file.contexts {
        rows.push(vec![
            if file.current.as_ref() == Some(name) { "*" } else { "" }.to_owned(),
            name.clone(),
            context.addr.clone().unwrap_or_default(),
            context.tenant.clone().unwrap_or_default(),
            path(&context.token_file).unwrap_or_default(),
            path(&context.ca).unwrap_or_default(),
        ]);
    }
    print_text(&render_rows(&rows))
}

#[derive(Serialize)]
struct Shown {
    context: Option<String>,
    addr: Value,
    token_file: Option<Value>,
    ca: Option<Value>,
    tenant: Option<Value>,
}

/// A setting and where it came from, as JSON shows it.
#[derive(Serialize)]
struct Value {
    value: String,
    from: String,
}

fn shown<T>(setting: &Setting<T>, text: impl Fn(&T) -> String) -> Value {
    Value {
        value: text(&setting.value),
        from: setting.origin.to_string(),
    }
}

fn show(target: &config::Target, out: &Printer) -> Result<(), Failure> {
    let path = |path: &std::path::PathBuf| path.display().to_string();
    let shown = Shown {
        context: target.context.clone(),
        addr: shown(&target.addr, String::clone),
        token_file: target.token_file.as_ref().map(|setting| shown(setting, path)),
        ca: target.ca.as_ref().map(|setting| shown(setting, path)),
        tenant: target.tenant.as_ref().map(|setting| shown(setting, String::clone)),
    };
    if out.is_json() {
        return print_json(&shown);
    }
    let row = |name: &str, value: Option<&Value>| match value {
        Some(value) => vec![name.to_owned(), value.value.clone(), format!("({})", value.from)],
        None => vec![name.to_owned(), "-".to_owned(), String::new()],
    };
    print_text(&render_rows(&[
        vec![
            "context".to_owned(),
            shown.context.clone().unwrap_or_else(|| "-".to_owned()),
        ],
        row("addr", Some(&shown.addr)),
        row("token_file", shown.token_file.as_ref()),
        row("ca", shown.ca.as_ref()),
        row("tenant", shown.tenant.as_ref()),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keeps_what_it_is_not_given_and_takes_only_typed_flags() {
        let mut file = ConfigFile::default();
        let globals = Globals {
            addr: Some(Given {
                value: "h:1".into(),
                origin: Origin::Flag,
            }),
            tenant: Some(Given {
                value: "from-env".into(),
                origin: Origin::Env("DIALIN_TENANT"),
            }),
            ..Globals::default()
        };
        assert!(set(&mut file, "prod", &globals));
        assert_eq!(
            file.current.as_deref(),
            Some("prod"),
            "the first context becomes current"
        );
        assert_eq!(
            file.contexts["prod"],
            Context {
                addr: Some("h:1".into()),
                ..Context::default()
            }
        );

        let globals = Globals {
            tenant: Some(Given {
                value: "contoso".into(),
                origin: Origin::Flag,
            }),
            ..Globals::default()
        };
        assert!(!set(&mut file, "prod", &globals));
        assert!(set(&mut file, "lab", &globals));
        assert_eq!(file.current.as_deref(), Some("prod"));
        assert_eq!(file.contexts["prod"].addr.as_deref(), Some("h:1"));
        assert_eq!(file.contexts["prod"].tenant.as_deref(), Some("contoso"));
    }
}
