//! The channel to the settings service and the bearer token on every call.
//! The token is read from its file and goes only into the `authorization`
//! header (marked sensitive); it is never printed, logged or taken in argv.

use std::{path::Path, time::Duration};

use dialin_proto::settings::v1::settings_service_client::SettingsServiceClient;
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};

use crate::{config::Target, failure::Failure};

pub type Client = SettingsServiceClient<InterceptedService<Channel, Bearer>>;

/// A client of the service `target` names; it connects on its first call.
pub fn client(target: &Target) -> Result<Client, Failure> {
    let addr = &target.addr.value;
    let url = endpoint_url(addr, target.ca.is_some()).map_err(Failure::Usage)?;
    let mut endpoint = Endpoint::from_shared(url)
        .map_err(|error| Failure::Usage(format!("--addr {addr}: {error}")))?
        .connect_timeout(Duration::from_secs(5));
    if let Some(ca) = &target.ca {
        let pem = std::fs::read(&ca.value)
            .map_err(|error| Failure::Usage(format!("cannot read the CA file {}: {error}", ca.value.display())))?;
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
            .map_err(|error| Failure::Usage(format!("TLS with {}: {error}", ca.value.display())))?;
    }
    let bearer = match &target.token_file {
        Some(file) => Bearer(Some(read_token(&file.value)?)),
        None => Bearer(None),
    };
    Ok(SettingsServiceClient::with_interceptor(endpoint.connect_lazy(), bearer))
}

/// The URL of `addr`: `host:port` gets `https://` when there is a CA, else
/// `http://`; an explicit scheme must agree with the CA.
pub fn endpoint_url(addr: &str, tls: bool) -> Result<String, String> {
    let scheme = addr.split_once("://").map(|(scheme, _)| scheme);
    match (scheme, tls) {
        (_, _) if addr.trim().is_empty() => Err("--addr is empty".into()),
        (None, false) => Ok(format!("http://{addr}")),
        (None, true) => Ok(format!("https://{addr}")),
        (Some("http"), false) | (Some("https"), true) => Ok(addr.to_owned()),
        (Some("http"), true) => Err(format!(
            "--addr {addr} is plaintext, but --ca asks for TLS: use https://"
        )),
        (Some("https"), false) => Err(format!(
            "--addr {addr} needs --ca (the PEM file of the CA that signed the service's certificate)"
        )),
        (Some(other), _) => Err(format!("--addr {addr}: {other}:// is not http:// or https://")),
    }
}

/// The `authorization` value of the token in `path`.
fn read_token(path: &Path) -> Result<MetadataValue<Ascii>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| Failure::Usage(format!("cannot read the token file {}: {error}", path.display())))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Failure::Usage(format!("the token file {} is empty", path.display())));
    }
    let mut value: MetadataValue<Ascii> = format!("Bearer {token}").parse().map_err(|_| {
        Failure::Usage(format!(
            "the token in {} is not printable ASCII on one line",
            path.display()
        ))
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Adds `authorization: Bearer <token>` to every call, when there is a token.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_take_a_scheme_that_agrees_with_the_ca() {
        assert_eq!(
            endpoint_url("127.0.0.1:50051", false).unwrap(),
            "http://127.0.0.1:50051"
        );
        assert_eq!(endpoint_url("dialin:443", true).unwrap(), "https://dialin:443");
        assert_eq!(endpoint_url("http://h:1", false).unwrap(), "http://h:1");
        assert_eq!(endpoint_url("https://h:1", true).unwrap(), "https://h:1");
        assert!(endpoint_url("https://h:1", false).unwrap_err().contains("--ca"));
        assert!(endpoint_url("http://h:1", true).unwrap_err().contains("https://"));
        assert!(endpoint_url("ftp://h:1", false).is_err());
        assert!(endpoint_url(" ", false).is_err());
    }

    #[test]
    fn the_token_is_read_trimmed_and_never_echoed() {
        let dir = std::env::temp_dir().join(format!("dialinctl-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "s3cret-token\n").unwrap();
        let value = read_token(&file).unwrap();
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().unwrap(), "Bearer s3cret-token");

        std::fs::write(&file, "two\nlines\u{7}").unwrap();
        let Err(Failure::Usage(message)) = read_token(&file) else {
            panic!("a token with a control character is refused");
        };
        assert!(!message.contains("two"), "{message}");
        std::fs::write(&file, "  \n").unwrap();
        assert!(matches!(read_token(&file), Err(Failure::Usage(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
