//! `dialinctl preview --kind K [--locale L]`: one kind of email with sample
//! values (never a real PIN), as the tenant's users would see it.

use dialin_proto::{notifier::v1::EmailKind, settings::v1::PreviewEmailRequest};

use super::Session;
use crate::{cli::KindArg, failure::Failure};

pub async fn run(kind: KindArg, locale: Option<String>, session: &Session) -> Result<(), Failure> {
    let preview = session
        .client()
        .preview_email(PreviewEmailRequest {
            tenant_id: session.tenant.clone(),
            kind: EmailKind::from(kind).into(),
            locale: locale.unwrap_or_default(),
        })
        .await?
        .into_inner();
    session.out.message_or_text(&preview, |preview| {
        format!(
            "Subject: {}\nLanguage: {}\n\n{}\n",
            preview.subject,
            preview.language,
            preview.text.trim_end()
        )
    })
}
