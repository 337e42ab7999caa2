//! `dialin-notifier preview`: one email with sample values, written as the
//! `.eml` a mail client opens and the `.html` a browser opens.

use std::path::PathBuf;

use crate::{
    config::PreviewArgs,
    email::{Language, preview},
    mail,
};

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("{0}")]
    Mail(#[from] mail::MailConfigError),
    #[error("cannot render the email: {0}")]
    Render(#[from] crate::email::RenderError),
    #[error("cannot build the message: {0}")]
    Build(#[from] mail::SendError),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Writes `<kind>-<language>.eml` and `.html` into the output directory and
/// returns their paths. `mail_from` is the service's sender, as configured.
pub fn write_files(args: &PreviewArgs, mail_from: &str) -> Result<Vec<PathBuf>, PreviewError> {
    let language = Language::for_locales(&args.locale, "");
    let email = preview::render(args.kind, language, args.sender_name.clone())?;
    let stem = format!("{}-{}", args.kind.as_str_name().to_lowercase(), language.tag());
    let html = email.html.clone();
    let to = mail::parse_mailbox(&format!("{} <{}>", preview::SAMPLE_NAME, preview::SAMPLE_ADDRESS))?;
    let message = mail::build_message(&format!("preview-{stem}"), mail::parse_mailbox(mail_from)?, to, email)?;
    let write = |extension: &str, contents: &[u8]| {
        let path = args.out_dir.join(format!("{stem}.{extension}"));
        std::fs::create_dir_all(&args.out_dir)
            .and_then(|()| std::fs::write(&path, contents))
            .map(|()| path.clone())
            .map_err(|source| PreviewError::Write { path, source })
    };
    Ok(vec![
        write("eml", &message.formatted())?,
        write("html", html.as_bytes())?,
    ])
}
