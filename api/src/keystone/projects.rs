//! Projects an admin makes (`POST projects`, `DELETE projects/{id}`) and
//! the one domain (`GET domains`). Tenants come from the auth file and
//! hold the secrets every dialect authenticates with; a project made here
//! is only a name with an id (kept durably in the settings object, key
//! `api.project/{id}`): it has no user, no token and no password, so no
//! one logs in to it and it holds no objects. What it has is quotas: Cinder's
//! `os-quota-sets/{id}` (and `/defaults`) treat it as a tenant with the
//! default quota class (an admin may set its own values, removed with
//! the project). Admins list, show and delete such projects; the auth
//! file's tenants cannot be deleted here.

use super::tokens::{caller, collection_links, project_view, Ctx};
use super::views::{
    self, Domain, DomainList, NoOptions, Project, ProjectList, ProjectOne, SelfLink,
};
use super::{DOMAIN_ID, DOMAIN_NAME};
use crate::auth::Tenant;
use crate::domain::settings;
use crate::error::{ApiError, ErrorKind, Result};
use crate::http::Reply;
use engine::Store;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The settings key prefix of a project record.
const PREFIX: &str = "api.project/";
/// Longest name or description.
const MAX_NAME: usize = 64;
const MAX_DESCRIPTION: usize = 65_535;

/// A project made through the API.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    id: String,
    name: String,
    #[serde(default)]
    description: String,
    enabled: bool,
}

/// The made project `id` as a tenant without secrets or quota of its own
/// (Cinder's quota sets use it), if there is one.
pub(crate) fn tenant(store: &Store, id: &str) -> Option<Tenant> {
    let r: Record = settings::record(&settings::read_store(store), PREFIX, id)?;
    Some(Tenant {
        id: r.id,
        token: String::new(),
        user: String::new(),
        password: String::new(),
        admin: false,
        quota: None,
    })
}

fn forbidden(action: &str) -> ApiError {
    ApiError::new(
        ErrorKind::Forbidden,
        format!("You are not authorized to perform the requested action: identity:{action}."),
    )
}

/// The caller, who must be an admin.
fn admin<'a>(ctx: &Ctx<'a>, action: &str) -> Result<&'a Tenant> {
    let me = caller(ctx)?;
    if me.admin {
        Ok(me)
    } else {
        Err(forbidden(action))
    }
}

fn view(ctx: &Ctx, r: &Record) -> Project {
    Project {
        id: r.id.clone(),
        name: r.name.clone(),
        domain_id: DOMAIN_ID.into(),
        description: r.description.clone(),
        enabled: r.enabled,
        is_domain: false,
        parent_id: DOMAIN_ID.into(),
        tags: Vec::new(),
        options: NoOptions {},
        links: SelfLink {
            this: format!("{}/projects/{}", ctx.root, r.id),
        },
    }
}

fn made(ctx: &Ctx) -> Vec<Record> {
    settings::records(&settings::read_store(ctx.state.store()), PREFIX)
}

/// `GET domains`: the one domain (`?name=` filters).
#[utoipa::path(
    get,
    path = "/domains",
    operation_id = "listDomains",
    tag = "projects",
    summary = "The one domain, `Default` (`?name=` filters)",
    params(("name" = Option<String>, Query, description = "only a domain of this name")),
    responses(
        (status = 200, description = "the domains", body = DomainList),
        (status = 401, description = "missing or invalid X-Auth-Token", body = views::Error),
    )
)]
pub(super) fn domains(ctx: &Ctx) -> Result<Reply> {
    caller(ctx)?;
    let wanted = ctx.req.query_param("name");
    let domains = if wanted.is_none_or(|n| n == DOMAIN_NAME) {
        vec![Domain {
            id: DOMAIN_ID.into(),
            name: DOMAIN_NAME.into(),
            description: "The one domain".into(),
            enabled: true,
            links: SelfLink {
                this: format!("{}/domains/{DOMAIN_ID}", ctx.root),
            },
        }]
    } else {
        Vec::new()
    };
    Ok(views::reply(
        200,
        &DomainList {
            domains,
            links: collection_links(format!("{}/domains", ctx.root)),
        },
    ))
}

/// `GET projects` (`?name=` filters): the caller's project; for an admin
/// every tenant's and every project made here.
#[utoipa::path(
    get,
    path = "/projects",
    operation_id = "listProjects",
    tag = "projects",
    summary = "The caller's project; an admin's: every project (`/auth/projects`: the caller's only)",
    params(("name" = Option<String>, Query, description = "only a project of this name")),
    responses(
        (status = 200, description = "the projects", body = ProjectList),
        (status = 401, description = "missing or invalid X-Auth-Token", body = views::Error),
    )
)]
pub(super) fn list(ctx: &Ctx) -> Result<Reply> {
    let me = caller(ctx)?;
    if !me.admin {
        return super::tokens::projects(ctx);
    }
    let wanted = ctx.req.query_param("name");
    let mut projects: Vec<Project> = ctx
        .state
        .auth()
        .tenants()
        .iter()
        .map(|t| project_view(ctx, t))
        .collect();
    projects.extend(made(ctx).iter().map(|r| view(ctx, r)));
    projects.retain(|p| wanted.is_none_or(|n| n == p.name));
    Ok(views::reply(
        200,
        &ProjectList {
            projects,
            links: collection_links(format!("{}/projects", ctx.root)),
        },
    ))
}

/// `GET projects/{id}`: the caller's own; an admin's any.
#[utoipa::path(
    get,
    path = "/projects/{project_id}",
    operation_id = "showProject",
    tag = "projects",
    summary = "The caller's own project (an admin's: any)",
    params(("project_id" = String, Path, description = "the project id")),
    responses(
        (status = 200, description = "the project", body = ProjectOne),
        (status = 401, description = "missing or invalid X-Auth-Token", body = views::Error),
        (status = 403, description = "another tenant's project", body = views::Error),
        (status = 404, description = "an admin asked for an unknown project", body = views::Error),
    )
)]
pub(super) fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let me = caller(ctx)?;
    if !me.admin || id == me.id {
        return super::tokens::project(ctx, id);
    }
    let project = match ctx.state.auth().by_id(id) {
        Some(t) => project_view(ctx, t),
        None => made(ctx)
            .iter()
            .find(|r| r.id == id)
            .map(|r| view(ctx, r))
            .ok_or_else(|| not_found(id))?,
    };
    Ok(views::reply(200, &ProjectOne { project }))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Could not find project: {}.", id.escape_debug()))
}

/// `POST projects` (admins): `name` (unique among tenants and projects),
/// optional `description`, `enabled`, `domain_id` (`default` only).
#[utoipa::path(
    post,
    path = "/projects",
    operation_id = "createProject",
    tag = "projects",
    summary = "Make a project: a name with quotas, no users (admins)",
    request_body = Value,
    responses(
        (status = 201, description = "the project", body = ProjectOne),
        (status = 400, description = "a bad body", body = views::Error),
        (status = 401, description = "missing or invalid X-Auth-Token", body = views::Error),
        (status = 403, description = "not an admin", body = views::Error),
        (status = 409, description = "the name is taken", body = views::Error),
    )
)]
pub(super) fn create(ctx: &Ctx) -> Result<Reply> {
    let me = admin(ctx, "create_project")?;
    let body = ctx.req.json_body()?;
    let p = body
        .as_ref()
        .and_then(|b| b.get("project"))
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::bad_request("Invalid input: 'project' is a required property"))?;
    let text = |k: &str, max: usize| -> Result<Option<String>> {
        match p.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.len() <= max => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::bad_request(format!(
                "Invalid input for field '{k}': a string of at most {max} characters"
            ))),
        }
    };
    let name = text("name", MAX_NAME)?
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("Invalid input: 'name' is a required property"))?;
    let description = text("description", MAX_DESCRIPTION)?.unwrap_or_default();
    let enabled = match p.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid input for field 'enabled': not a boolean",
            ))
        }
    };
    if let Some(d) = text("domain_id", MAX_NAME)? {
        if d != DOMAIN_ID {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field 'domain_id': the one domain is '{DOMAIN_ID}'"
            )));
        }
    }
    if p.get("is_domain").is_some_and(|v| v == &Value::Bool(true)) {
        return Err(ApiError::bad_request(
            "Invalid input for field 'is_domain': this service has one domain",
        ));
    }
    let r = Record {
        id: uuid::Uuid::new_v4().simple().to_string(),
        name,
        description,
        enabled,
    };
    let dom = crate::domain::Ctx::new(ctx.state, me);
    let locked = dom.lock();
    settings::update(ctx.state.store(), &locked, |m| {
        let taken = ctx.state.auth().tenants().iter().any(|t| t.id == r.name)
            || settings::records::<Record>(m, PREFIX)
                .iter()
                .any(|x| x.name == r.name);
        if taken {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!(
                    "Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain: {}.",
                    r.name.escape_debug()
                ),
            ));
        }
        settings::put(m, PREFIX, &r.id, &r)
    })?;
    tracing::info!(tenant = %me.id, project = %r.id, "keystone: project created");
    Ok(views::reply(
        201,
        &ProjectOne {
            project: view(ctx, &r),
        },
    ))
}

/// `DELETE projects/{id}` (admins): a project made here, with its quota
/// values; the auth file's tenants are 403.
#[utoipa::path(
    delete,
    path = "/projects/{project_id}",
    operation_id = "deleteProject",
    tag = "projects",
    summary = "Delete a project made through the API, with its quotas (admins)",
    params(("project_id" = String, Path, description = "the project id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, description = "missing or invalid X-Auth-Token", body = views::Error),
        (status = 403, description = "not an admin, or a tenant of the auth file", body = views::Error),
        (status = 404, description = "no such project", body = views::Error),
    )
)]
pub(super) fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let me = admin(ctx, "delete_project")?;
    if ctx.state.auth().by_id(id).is_some() {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "The auth file's tenants cannot be deleted through the API.",
        ));
    }
    let dom = crate::domain::Ctx::new(ctx.state, me);
    let locked = dom.lock();
    settings::update(ctx.state.store(), &locked, |m| {
        if m.remove(&format!("{PREFIX}{id}")).is_none() {
            return Err(not_found(id));
        }
        let quotas = crate::domain::quota::project_key(id, "");
        m.retain(|k, _| !k.starts_with(&quotas));
        Ok(())
    })?;
    tracing::info!(tenant = %me.id, project = %id, "keystone: project deleted");
    Ok(Reply::empty(204))
}
