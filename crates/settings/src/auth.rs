//! Who may call the settings service, and for which tenant.
//!
//! Callers send `authorization: Bearer <token>`. The tokens file
//! (`DIALIN_SETTINGS_TOKENS_FILE`) lists, one per line, the SHA-256 hex of a
//! token, a space and its scope: `*` (an operator: every tenant) or
//! `tenant:<tenant_id>`; `#` starts a comment. The file is re-read when it
//! changes, so a token is revoked by deleting its line. Without a file there
//! is no authentication, which `startup` allows on a loopback address only.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use sha2::{Digest, Sha256};
use tonic::{Request, Status, metadata::MetadataMap};

use crate::error::{self, Error, Reason, Result};

/// How often the tokens file is checked for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every tenant.
    Operator,
    Tenant(String),
}

/// The authenticated caller of one request (put in its extensions).
#[derive(Clone, Debug)]
pub struct Caller(Scope);

impl Caller {
    /// Refuses a caller scoped to another tenant. It says nothing about the
    /// other tenant (not even whether it has users): the check comes first.
    pub fn authorize(&self, tenant_id: &str) -> Result<()> {
        match &self.0 {
            Scope::Operator => Ok(()),
            Scope::Tenant(own) if own == tenant_id => Ok(()),
            Scope::Tenant(own) => Err(Error::permission_denied(format!(
                "this token acts for tenant {own} only"
            ))),
        }
    }
}

fn unauthenticated(reason: Reason, message: &str) -> Status {
    Status::from(Error::unauthenticated(reason, message))
}

#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("cannot read the tokens file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("tokens file {path}, line {line}: {reason}")]
    Malformed { path: PathBuf, line: usize, reason: String },
}

/// SHA-256 of each token → its scope.
type TokenTable = HashMap<[u8; 32], Scope>;

/// The token table, or none at all (loopback-only mode).
#[derive(Clone)]
pub struct Tokens {
    /// `None` when authentication is off.
    table: Option<Arc<RwLock<TokenTable>>>,
}

impl Tokens {
    /// No authentication: every caller is an operator.
    pub fn disabled() -> Self {
        Self { table: None }
    }

    pub fn load(path: &Path) -> Result<Self, TokensError> {
        Ok(Self {
            table: Some(Arc::new(RwLock::new(parse_file(path)?))),
        })
    }

    /// Re-reads `path` whenever it changes; a broken edit keeps the previous
    /// table (and says so in the log) rather than locking everyone out.
    pub fn watch(&self, path: PathBuf) {
        let Some(table) = self.table.clone() else {
            return;
        };
        tokio::spawn(async move {
            let mut seen = modified(&path);
            loop {
                tokio::time::sleep(RELOAD_EVERY).await;
                let now = modified(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                match parse_file(&path) {
                    Ok(fresh) => {
                        let count = fresh.len();
                        if let Ok(mut current) = table.write() {
                            *current = fresh;
                        }
                        tracing::info!(path = %path.display(), tokens = count, "tokens file reloaded");
                    }
                    Err(error) => {
                        tracing::error!(%error, "tokens file not reloaded; the previous tokens stay in force")
                    }
                }
            }
        });
    }

    /// The interceptor's check: who is calling, from the bearer token.
    pub fn authenticate(&self, metadata: &MetadataMap) -> std::result::Result<Caller, Status> {
        let Some(table) = &self.table else {
            return Ok(Caller(Scope::Operator));
        };
        let header = metadata
            .get("authorization")
            .ok_or_else(|| unauthenticated(Reason::TokenMissing, "missing authorization: Bearer <token>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                unauthenticated(
                    Reason::TokenMalformed,
                    "the authorization header must be: Bearer <token>",
                )
            })?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let table = table.read().map_err(|_| error::internal("token table unavailable"))?;
        table
            .get(&digest)
            .map(|scope| Caller(scope.clone()))
            .ok_or_else(|| unauthenticated(Reason::TokenUnknown, "unknown or revoked token"))
    }

    /// A tonic interceptor that authenticates every call and records the caller.
    pub fn interceptor(&self) -> impl FnMut(Request<()>) -> std::result::Result<Request<()>, Status> + Clone + use<> {
        let tokens = self.clone();
        move |mut request: Request<()>| {
            let caller = tokens.authenticate(request.metadata())?;
            request.extensions_mut().insert(caller);
            Ok(request)
        }
    }
}

fn modified(path: &Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

fn parse_file(path: &Path) -> Result<TokenTable, TokensError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|(line, reason)| TokensError::Malformed {
        path: path.to_owned(),
        line,
        reason,
    })
}

/// Parses the file's text; an error names the line and what is wrong with it.
fn parse(text: &str) -> Result<TokenTable, (usize, String)> {
    let mut table = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let number = index + 1;
        let (hash, scope) = line
            .split_once(char::is_whitespace)
            .ok_or((number, "expected: <sha256 hex of the token> <scope>".to_owned()))?;
        let digest: [u8; 32] = hex::decode(hash).ok().and_then(|bytes| bytes.try_into().ok()).ok_or((
            number,
            "the token hash must be 64 hex digits (sha256sum of the token)".to_owned(),
        ))?;
        let scope = match scope.trim() {
            "*" => Scope::Operator,
            scope => match scope.strip_prefix("tenant:") {
                Some(tenant) if !tenant.is_empty() => Scope::Tenant(tenant.to_owned()),
                _ => return Err((number, format!("scope {scope:?} must be * or tenant:<tenant_id>"))),
            },
        };
        table.insert(digest, scope);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(token: &str) -> String {
        hex::encode(Sha256::digest(token.as_bytes()))
    }

    fn bearer(token: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert("authorization", format!("Bearer {token}").parse().unwrap());
        metadata
    }

    #[test]
    fn tokens_authenticate_and_scope() {
        let text = format!(
            "# operators\n{} *\n{} tenant:contoso  # Contoso's portal\n\n",
            hash("op"),
            hash("ct")
        );
        let tokens = Tokens {
            table: Some(Arc::new(RwLock::new(parse(&text).unwrap()))),
        };
        let operator = tokens.authenticate(&bearer("op")).unwrap();
        assert!(operator.authorize("anyone").is_ok());
        let contoso = tokens.authenticate(&bearer("ct")).unwrap();
        assert!(contoso.authorize("contoso").is_ok());
        assert_eq!(
            contoso.authorize("fabrikam").unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        assert_eq!(
            tokens.authenticate(&bearer("nope")).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            tokens.authenticate(&MetadataMap::new()).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert!(Tokens::disabled().authenticate(&MetadataMap::new()).is_ok());
    }

    #[test]
    fn a_malformed_line_is_named() {
        assert_eq!(parse("abc *").unwrap_err().0, 1);
        assert_eq!(parse(&format!("\n{} tenant:", hash("x"))).unwrap_err().0, 2);
        assert_eq!(parse(&format!("{} admin", hash("x"))).unwrap_err().0, 1);
        assert_eq!(parse(&hash("x")).unwrap_err().0, 1);
    }
}
