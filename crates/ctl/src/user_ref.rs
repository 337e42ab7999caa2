//! USER on the command line is a user_id or an email: an argument with an `@`
//! is an email (user ids have none in practice, and the service looks an email
//! up in any case), found with `GetUser { email }`.

use dialin_proto::settings::v1::GetUserRequest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserRef<'a> {
    Id(&'a str),
    Email(&'a str),
}

impl<'a> UserRef<'a> {
    pub fn parse(argument: &'a str) -> Self {
        if argument.contains('@') {
            Self::Email(argument)
        } else {
            Self::Id(argument)
        }
    }

    /// The `GetUser` request that finds this user in `tenant_id`.
    pub fn get_request(self, tenant_id: &str) -> GetUserRequest {
        let (user_id, email) = match self {
            Self::Id(user_id) => (user_id, ""),
            Self::Email(email) => ("", email),
        };
        GetUserRequest {
            tenant_id: tenant_id.to_owned(),
            user_id: user_id.to_owned(),
            email: email.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_at_sign_makes_an_email() {
        assert_eq!(UserRef::parse("alice"), UserRef::Id("alice"));
        assert_eq!(UserRef::parse("Alice@Contoso.com"), UserRef::Email("Alice@Contoso.com"));
        let request = UserRef::parse("alice@contoso.com").get_request("t");
        assert_eq!(
            (
                request.tenant_id.as_str(),
                request.user_id.as_str(),
                request.email.as_str()
            ),
            ("t", "", "alice@contoso.com")
        );
        let request = UserRef::parse("alice").get_request("t");
        assert_eq!((request.user_id.as_str(), request.email.as_str()), ("alice", ""));
    }
}
