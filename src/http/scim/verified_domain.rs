//! A directory's `requireVerifiedDomain`: a user created or changed
//! through it (also in a Bulk request) must have a primary email whose
//! domain is a verified domain of the organisation, else the write is
//! refused with `400 invalidValue` and nothing is written.
//!
//! The setting arrives with the authenticated key (`ScimContext`), so a
//! directory without it pays nothing; with it, a write costs one
//! primary-key look-up of the domain.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::directory::domain::email_domain;
use crate::directory::UserDraft;
use crate::http::error::ScimApiError;
use crate::http::extract::ScimContext;
use crate::http::AppState;
use crate::scim::patch::{apply_patch, PatchRequest};
use crate::scim::resource::{drop_write_only, parse_attribute_value};
use crate::scim::schema::USER_RESOURCE;
use crate::scim::ScimError;
use crate::store::StoreError;

/// Refuses `user` unless its directory accepts it.
pub(super) async fn check_user(
    state: &AppState,
    ctx: &ScimContext,
    user: &UserDraft,
) -> Result<(), ScimApiError> {
    if !ctx.require_verified_domain {
        return Ok(());
    }
    check_email(state, ctx, user.primary_email.as_deref()).await?;
    Ok(())
}

/// The domain of `email` when it is a verified domain of the org.
async fn check_email(
    state: &AppState,
    ctx: &ScimContext,
    email: Option<&str>,
) -> Result<String, ScimApiError> {
    let Some(email) = email else {
        return Err(ScimError::invalid_value(
            "this directory accepts only users with a primary email in a verified domain of \
             this organisation, and the user has no email",
        )
        .into());
    };
    let Some(domain) = email_domain(email) else {
        return Err(ScimError::invalid_value(format!(
            "the primary email '{email}' has no domain, and this directory accepts only users \
             with a primary email in a verified domain of this organisation"
        ))
        .into());
    };
    if state.store.is_verified_domain(ctx.org_id, &domain).await? {
        Ok(domain)
    } else {
        Err(ScimError::invalid_value(format!(
            "the email domain '{domain}' is not a verified domain of this organisation"
        ))
        .into())
    }
}

/// For a PATCH, whose result is known only inside the write: the domain
/// checked beforehand against the patched user as it was read, which the
/// write's own result must still have.
pub(super) struct DomainGuard(Option<String>);

impl DomainGuard {
    /// Applies `request` to the stored user and checks the result's
    /// domain. A missing user is left for the write to report.
    pub(super) async fn for_patch(
        state: &AppState,
        ctx: &ScimContext,
        id: Uuid,
        request: &PatchRequest,
    ) -> Result<DomainGuard, ScimApiError> {
        if !ctx.require_verified_domain {
            return Ok(DomainGuard(None));
        }
        let row = match state.store.get_user(ctx.directory_id, id).await {
            Ok(row) => row,
            Err(StoreError::NotFound) => return Ok(DomainGuard(None)),
            Err(e) => return Err(e.into()),
        };
        let mut doc: Map<String, Value> = row.doc_map();
        apply_patch(&USER_RESOURCE, &mut doc, request, &parse_attribute_value)?;
        drop_write_only(&USER_RESOURCE, &mut doc);
        let draft = UserDraft::from_doc(&doc)?;
        let domain = check_email(state, ctx, draft.primary_email.as_deref()).await?;
        Ok(DomainGuard(Some(domain)))
    }

    /// The write's result, if its domain is the one checked (a user
    /// changed in between is refused rather than let through unchecked).
    pub(super) fn check(&self, user: UserDraft) -> Result<UserDraft, ScimApiError> {
        let Some(checked) = &self.0 else {
            return Ok(user);
        };
        let domain = user.primary_email.as_deref().and_then(email_domain);
        if domain.as_deref() == Some(checked.as_str()) {
            Ok(user)
        } else {
            Err(ScimError::invalid_value(
                "the user changed while its email domain was checked; retry the request",
            )
            .into())
        }
    }
}
