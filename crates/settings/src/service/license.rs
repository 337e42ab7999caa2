//! A user's license and provider: getting on the hosted bridge (WELCOME, with a
//! new PIN) and off it (DISABLED), plus reading users.

use dialin_domain::validate;
use dialin_proto::{
    notifier::v1::EmailKind,
    settings::v1::{self as pb, Provider},
};
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{self, LikeExpr},
};
use secrecy::{ExposeSecret, SecretString};

use super::{
    SettingsApi,
    bridge::Bridge,
    convert::{required_enum, user_to_pb},
    users::{Edit, allocate_conference_id, change_user, find_user, lowered_email},
};
use crate::{
    entity::{tenant_settings, user},
    error::{Error, Reason, Result, check},
    pin::{self, PinKey},
};

const DEFAULT_PAGE_SIZE: u32 = 100;
const MAX_PAGE_SIZE: u32 = 1000;
const MAX_PROVIDER_NAME_LEN: usize = 128;

pub(super) async fn get_user(api: &SettingsApi, request: pb::GetUserRequest) -> Result<pb::ConferencingUser> {
    check(validate::id("tenant_id", &request.tenant_id))?;
    let user = find_user(api.db.reader(), &request.tenant_id, &request.user_id, &request.email).await?;
    Ok(user_to_pb(user))
}

pub(super) async fn list_users(api: &SettingsApi, request: pb::ListUsersRequest) -> Result<pb::ListUsersResponse> {
    check(validate::id("tenant_id", &request.tenant_id))?;
    let page_size = match request.page_size {
        0 => DEFAULT_PAGE_SIZE,
        size => size.min(MAX_PAGE_SIZE),
    };
    let mut query = user::Entity::find()
        .filter(user::Column::TenantId.eq(&request.tenant_id))
        .order_by_asc(user::Column::UserId)
        .limit(u64::from(page_size) + 1);
    if let Some(licensed) = request.licensed {
        query = query.filter(user::Column::Licensed.eq(licensed));
    }
    if let Some(provider) = request.provider {
        let provider: Provider = required_enum("provider (HOSTED, THIRD_PARTY or NONE)", provider)?;
        query = query.filter(user::Column::Provider.eq(provider.as_str_name()));
    }
    if let Some(toll_number) = &request.toll_number {
        check(validate::e164("toll_number", toll_number))?;
        query = query.filter(user::Column::TollNumber.eq(toll_number));
    }
    if let Some(prefix) = &request.email_prefix {
        query = query.filter(sea_query::ExprTrait::like(
            lowered_email(),
            email_prefix_pattern(prefix)?,
        ));
    }
    // The page token is the last user id of the previous page.
    if !request.page_token.is_empty() {
        check(validate::id("page_token", &request.page_token))?;
        query = query.filter(user::Column::UserId.gt(&request.page_token));
    }
    let mut users = query.all(api.db.reader()).await?;
    let next_page_token = if users.len() > page_size as usize {
        users.truncate(page_size as usize);
        users.last().map(|u| u.user_id.clone()).unwrap_or_default()
    } else {
        String::new()
    };
    Ok(pb::ListUsersResponse {
        users: users.into_iter().map(user_to_pb).collect(),
        next_page_token,
    })
}

/// The `LIKE` pattern of the emails that start with `prefix`, in any case
/// (`%`, `_` and a backslash in it match only themselves).
fn email_prefix_pattern(prefix: &str) -> Result<LikeExpr> {
    if prefix.is_empty() || prefix.len() > 254 || prefix.chars().any(char::is_control) {
        return Err(Error::invalid(
            "email_prefix",
            "email_prefix must be 1 to 254 characters, without control characters",
        ));
    }
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.to_ascii_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Ok(LikeExpr::new(pattern).escape('\\'))
}

/// One user's license request, every field checked.
#[derive(Clone)]
pub(super) struct NewLicense {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub locale: String,
    pub usage_location: String,
    pub toll_number: Option<String>,
    pub toll_free_number: Option<String>,
}

impl NewLicense {
    pub(super) fn validate(entry: pb::UserToLicense) -> Result<Self> {
        check(validate::id("user_id", &entry.user_id))?;
        check(validate::email("email", &entry.email))?;
        check(validate::display_name("display_name", &entry.display_name))?;
        let locale = entry.locale.unwrap_or_default();
        if !locale.is_empty() {
            check(validate::locale("locale", &locale))?;
        }
        let usage_location = entry.usage_location.unwrap_or_default();
        if !usage_location.is_empty() {
            check(validate::country("usage_location", &usage_location))?;
        }
        Ok(Self {
            user_id: entry.user_id,
            email: entry.email,
            display_name: entry.display_name,
            locale,
            usage_location,
            toll_number: entry.toll_number,
            toll_free_number: entry.toll_free_number,
        })
    }

    /// The user this license makes, on the hosted bridge with `conference_id`
    /// and a fresh PIN (returned; only its hash is kept). `existing` is the
    /// unlicensed user of that id, if any: refused if it already holds a license.
    pub(super) fn into_user(
        self,
        pin_key: &PinKey,
        settings: &tenant_settings::Model,
        bridge: &Bridge,
        existing: Option<&user::Model>,
        conference_id: String,
    ) -> Result<(user::Model, SecretString)> {
        if existing.is_some_and(|user| user.licensed) {
            return Err(Error::precondition(
                Reason::UserAlreadyLicensed,
                format!(
                    "user {} already holds a license; use ResetPin, SetDefaultNumbers or SetProvider to change their settings",
                    self.user_id
                ),
            )
            .about("tenant_id", &settings.tenant_id)
            .about("user_id", &self.user_id));
        }
        let mut user = user::Model {
            tenant_id: settings.tenant_id.clone(),
            user_id: self.user_id,
            email: self.email,
            display_name: self.display_name,
            locale: self.locale,
            usage_location: self.usage_location,
            licensed: true,
            provider: Provider::None.as_str_name().to_owned(),
            provider_name: String::new(),
            conference_id: None,
            toll_number: String::new(),
            toll_free_number: String::new(),
            pin_hash: None,
            version: existing.map_or(0, |user| user.version),
        };
        let requested = RequestedNumbers {
            toll: self.toll_number.as_deref(),
            toll_free: self.toll_free_number.as_deref(),
        };
        let pin = put_on_hosted_bridge(pin_key, bridge, settings, &mut user, requested, conference_id)?;
        Ok((user, pin))
    }
}

pub(super) async fn remove(api: &SettingsApi, request: pb::RemoveLicenseRequest) -> Result<pb::ConferencingUser> {
    let (user, _) = change_user(api, &request.tenant_id, &request.user_id, async |_, _, user| {
        require_licensed(user)?;
        let was_hosted = is_hosted(user);
        take_off_hosted_bridge(user);
        user.licensed = false;
        user.provider = Provider::None.as_str_name().to_owned();
        user.provider_name = String::new();
        // A user already moved to another provider was told then; no second DISABLED.
        Ok(Edit::Write {
            email: was_hosted.then_some(EmailKind::Disabled),
            pin: None,
        })
    })
    .await?;
    tracing::info!(tenant_id = user.tenant_id, user_id = user.user_id, "license removed");
    Ok(user_to_pb(user))
}

pub(super) async fn set_provider(
    api: &SettingsApi,
    request: pb::SetProviderRequest,
) -> Result<pb::SetProviderResponse> {
    let provider: Provider = required_enum("provider (HOSTED, THIRD_PARTY or NONE)", request.provider)?;
    let provider_name = if provider == Provider::ThirdParty {
        check(validate::display_name(
            "provider_name (required for THIRD_PARTY)",
            &request.provider_name,
        ))?;
        if request.provider_name.chars().count() > MAX_PROVIDER_NAME_LEN {
            return Err(Error::invalid(
                "provider_name",
                format!("provider_name is longer than {MAX_PROVIDER_NAME_LEN} characters"),
            ));
        }
        request.provider_name
    } else {
        String::new()
    };

    let (user, pin) = change_user(
        api,
        &request.tenant_id,
        &request.user_id,
        async |txn, settings, user| {
            require_licensed(user)?;
            if user.provider == provider.as_str_name() && user.provider_name == provider_name {
                return Ok(Edit::Unchanged);
            }
            let mut pin = None;
            let email = match (is_hosted(user), provider == Provider::Hosted) {
                (false, true) => {
                    let bridge = Bridge::load(txn, &user.tenant_id).await?;
                    let conference_id = allocate_conference_id(txn, &user.tenant_id, None).await?;
                    pin = Some(put_on_hosted_bridge(
                        &api.pin_key,
                        &bridge,
                        settings,
                        user,
                        RequestedNumbers::default(),
                        conference_id,
                    )?);
                    Some(EmailKind::Welcome)
                }
                (true, false) => {
                    take_off_hosted_bridge(user);
                    Some(EmailKind::Disabled)
                }
                _ => None,
            };
            user.provider = provider.as_str_name().to_owned();
            user.provider_name = provider_name.clone();
            Ok(Edit::Write { email, pin })
        },
    )
    .await?;
    tracing::info!(
        tenant_id = user.tenant_id,
        user_id = user.user_id,
        provider = user.provider,
        "provider changed"
    );
    Ok(pb::SetProviderResponse {
        user: Some(user_to_pb(user)),
        pin: pin.map(|pin| pin.expose_secret().to_owned()).unwrap_or_default(),
    })
}

#[derive(Default)]
struct RequestedNumbers<'a> {
    toll: Option<&'a str>,
    toll_free: Option<&'a str>,
}

/// Gives `user` the hosted bridge: default numbers, `conference_id` (free in
/// the tenant) and a fresh PIN (returned; only its hash is kept).
fn put_on_hosted_bridge(
    pin_key: &PinKey,
    bridge: &Bridge,
    settings: &tenant_settings::Model,
    user: &mut user::Model,
    requested: RequestedNumbers<'_>,
    conference_id: String,
) -> Result<SecretString> {
    user.toll_number = bridge.toll_number_for(requested.toll, &user.usage_location)?;
    user.toll_free_number = bridge.toll_free_number_for(requested.toll_free)?;
    user.conference_id = Some(conference_id);
    user.provider = Provider::Hosted.as_str_name().to_owned();
    let pin = pin::generate(settings.pin_length.unsigned_abs());
    user.pin_hash = Some(pin_key.hash(&user.tenant_id, &pin));
    Ok(pin)
}

/// Ends the user's hosted dial-in: the conference ID and PIN stop working.
fn take_off_hosted_bridge(user: &mut user::Model) {
    user.conference_id = None;
    user.pin_hash = None;
    user.toll_number = String::new();
    user.toll_free_number = String::new();
}

pub(super) fn is_hosted(user: &user::Model) -> bool {
    user.licensed && user.provider == Provider::Hosted.as_str_name()
}

fn require_licensed(user: &user::Model) -> Result<()> {
    if user.licensed {
        return Ok(());
    }
    Err(Error::precondition(
        Reason::UserNotLicensed,
        format!(
            "user {} holds no license; assign one with AssignLicense first",
            user.user_id
        ),
    )
    .about("tenant_id", &user.tenant_id)
    .about("user_id", &user.user_id))
}

/// Refuses a change that only makes sense on the hosted bridge.
pub(super) fn require_hosted(user: &user::Model) -> Result<()> {
    require_licensed(user)?;
    if is_hosted(user) {
        return Ok(());
    }
    Err(Error::precondition(
        Reason::UserNotOnHostedBridge,
        format!(
            "user {} is not on the hosted bridge (provider {}); move them with SetProvider first",
            user.user_id, user.provider
        ),
    )
    .about("tenant_id", &user.tenant_id)
    .about("user_id", &user.user_id))
}
