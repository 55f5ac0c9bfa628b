//! Keystone tokens: `POST auth/tokens` (methods `password` and `token`),
//! `GET`/`HEAD auth/tokens` (validation of `X-Subject-Token` by a caller
//! holding a valid `X-Auth-Token`), the service catalogue, and the few
//! project and user reads clients make. Tokens are the stateless signed
//! tokens of `token.rs`; they, and passwords, are never logged.

use super::views::{
    self, Catalog, CollectionLinks, Endpoint, NoOptions, Project, ProjectList, ProjectOne, Role,
    SelfLink, Service, Token, TokenOne, TokenProject, TokenUser, User, UserOne,
};
use super::{domain_ref, DOMAIN_ID, DOMAIN_NAME};
use crate::auth::Tenant;
use crate::error::{ApiError, ErrorKind, Result};
use crate::http::{Reply, Request};
use crate::token::{Claims, UnixTime};
use crate::ApiState;
use serde_json::{Map, Value};

/// The region every endpoint is in.
const REGION: &str = "RegionOne";

/// One Keystone request's context: `root` is the v3 root the client used
/// (`http://host/v3` or `http://host/identity/v3`).
pub(super) struct Ctx<'a> {
    pub state: &'a ApiState,
    pub req: &'a Request,
    pub root: &'a str,
}

fn unauthorized() -> ApiError {
    ApiError::new(
        ErrorKind::Unauthorized,
        "The request you have made requires authentication.",
    )
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

fn obj<'a>(m: &'a Map<String, Value>, key: &str) -> Result<Option<&'a Map<String, Value>>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(bad(format!(
            "Invalid input for field '{key}': not an object"
        ))),
    }
}

fn string<'a>(m: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(format!(
            "Invalid input for field '{key}': not a string"
        ))),
    }
}

/// Checks a `{"id": ...}` or `{"name": ...}` domain reference.
fn check_domain(d: Option<&Map<String, Value>>) -> Result<()> {
    let Some(d) = d else { return Ok(()) };
    let ok = match (string(d, "id")?, string(d, "name")?) {
        (Some(id), _) => id == DOMAIN_ID,
        (None, Some(name)) => name == DOMAIN_NAME,
        (None, None) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(unauthorized())
    }
}

/// The tenant of a password method, or 401.
fn by_password<'a>(state: &'a ApiState, m: &Map<String, Value>) -> Result<&'a Tenant> {
    let user = obj(m, "user")?.ok_or_else(|| bad("Expecting to find user in password."))?;
    let password = string(user, "password")?.ok_or_else(unauthorized)?;
    check_domain(obj(user, "domain")?)?;
    // The user's id and name are both its `user`.
    let name = match (string(user, "id")?, string(user, "name")?) {
        (Some(id), _) => id,
        (None, Some(name)) => name,
        (None, None) => return Err(bad("Expecting to find id or name in user.")),
    };
    state
        .auth()
        .by_basic(name, password)
        .ok_or_else(unauthorized)
}

/// The tenant and original claims of a token method, or 401.
fn by_token<'a>(
    state: &'a ApiState,
    m: &Map<String, Value>,
) -> Result<(&'a Tenant, Option<Claims>)> {
    let token = string(m, "id")?.ok_or_else(|| bad("Expecting to find id in token."))?;
    let claims = state.token_key().verify(token, UnixTime::now());
    let tenant = state.authenticate(token).ok_or_else(unauthorized)?;
    Ok((tenant, claims))
}

/// Checks the requested scope against the tenant's one project.
fn check_scope(auth: &Map<String, Value>, tenant: &Tenant) -> Result<()> {
    let scope = match auth.get("scope") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) if s == "unscoped" => return Ok(()),
        Some(Value::Object(s)) => s,
        Some(_) => return Err(bad("Invalid input for field 'scope'")),
    };
    let Some(project) = obj(scope, "project")? else {
        return Err(ApiError::new(
            ErrorKind::Unauthorized,
            "Only project scope is supported by this identity service.",
        ));
    };
    check_domain(obj(project, "domain")?)?;
    let named = match (string(project, "id")?, string(project, "name")?) {
        (Some(id), _) => id,
        (None, Some(name)) => name,
        (None, None) => return Err(bad("Expecting to find id or name in project.")),
    };
    if named == tenant.id {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorKind::Unauthorized,
            format!(
                "User {} has no access to project {}",
                tenant.user,
                named.escape_debug()
            ),
        ))
    }
}

/// `POST auth/tokens`.
#[utoipa::path(
    post,
    path = "/auth/tokens",
    operation_id = "issueToken",
    tag = "tokens",
    summary = "Issue a token (methods `password` or `token`, optional project scope)",
    params(("nocatalog" = Option<String>, Query, description = "leave the catalogue out")),
    request_body(content = Object, description = "`{\"auth\": {\"identity\": {\"methods\": [...], ...}, \"scope\"?: {\"project\": {...}}}}`"),
    security(()),
    responses(
        (status = 201, description = "the token; its id in `X-Subject-Token`", body = TokenOne,
            headers(("x-subject-token" = String, description = "the token"))),
        (status = 400, description = "malformed body", body = views::Error),
        (status = 401, description = "wrong credentials, scope or method", body = views::Error),
    )
)]
pub(super) fn issue(ctx: &Ctx) -> Result<Reply> {
    let body = match ctx.req.json_body()? {
        Some(Value::Object(m)) => m,
        _ => return Err(bad("Expecting to find auth in request body.")),
    };
    let auth = obj(&body, "auth")?.ok_or_else(|| bad("Expecting to find auth in request body."))?;
    let identity =
        obj(auth, "identity")?.ok_or_else(|| bad("Expecting to find identity in auth."))?;
    let methods: Vec<&str> = match identity.get("methods") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => return Err(bad("Expecting to find methods in identity.")),
    };
    let (tenant, earlier) = match methods.as_slice() {
        ["password"] => {
            let m = obj(identity, "password")?
                .ok_or_else(|| bad("Expecting to find password in identity."))?;
            (by_password(ctx.state, m)?, None)
        }
        ["token"] => {
            let m = obj(identity, "token")?
                .ok_or_else(|| bad("Expecting to find token in identity."))?;
            by_token(ctx.state, m)?
        }
        _ => {
            return Err(ApiError::new(
                ErrorKind::Unauthorized,
                "Only the password and token auth methods are supported.",
            ))
        }
    };
    check_scope(auth, tenant)?;
    let key = ctx.state.token_key();
    let now = UnixTime::now();
    let (token, claims) = match earlier {
        // Rescoping keeps the original expiry and audit chain, as Keystone.
        Some(c) => {
            let claims = Claims {
                issued_at: now,
                methods: vec!["token".into()],
                ..c
            };
            (key.sign(&claims), claims)
        }
        None => key.issue(&tenant.id, &methods, now),
    };
    tracing::info!(tenant = %tenant.id, method = %methods.join(","), "keystone: token issued");
    let nocatalog = ctx.req.query_param("nocatalog").is_some();
    Ok(
        views::reply(201, &token_body(ctx, tenant, &claims, !nocatalog))
            .with_header("x-subject-token", token),
    )
}

/// The caller's tenant from `X-Auth-Token`, or 401.
pub(super) fn caller<'a>(ctx: &Ctx<'a>) -> Result<&'a Tenant> {
    let token = ctx.req.header("x-auth-token").ok_or_else(unauthorized)?;
    ctx.state.authenticate(token).ok_or_else(unauthorized)
}

/// `GET`/`HEAD auth/tokens`: the caller's token must be valid; the subject
/// token must be a live token this server signed (404 otherwise).
/// A tenant may validate its own tokens; an admin tenant, anyone's.
#[utoipa::path(
    method(get, head),
    path = "/auth/tokens",
    operation_id = "validateToken",
    tag = "tokens",
    summary = "Validate the token in `X-Subject-Token` (HEAD: no body)",
    params(
        ("X-Subject-Token" = String, Header, description = "the token to validate"),
        ("nocatalog" = Option<String>, Query, description = "leave the catalogue out"),
    ),
    responses(
        (status = 200, description = "the subject token", body = TokenOne),
        (status = 401, description = "missing or invalid X-Auth-Token", body = views::Error),
        (status = 403, description = "another tenant's token", body = views::Error),
        (status = 404, description = "the subject token is not valid", body = views::Error),
    )
)]
pub(super) fn validate(ctx: &Ctx) -> Result<Reply> {
    let me = caller(ctx)?;
    let subject = ctx.req.header("x-subject-token").unwrap_or("");
    let invalid = || ApiError::not_found("Failed to validate token");
    let claims = ctx
        .state
        .token_key()
        .verify(subject, UnixTime::now())
        .ok_or_else(invalid)?;
    let tenant = ctx.state.auth().by_id(&claims.tenant).ok_or_else(invalid)?;
    if tenant.id != me.id && !me.admin {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "You are not authorized to perform the requested action: identity:validate_token.",
        ));
    }
    let nocatalog = ctx.req.query_param("nocatalog").is_some();
    let reply = if ctx.req.method.as_str() == "HEAD" {
        Reply::empty(200)
    } else {
        views::reply(200, &token_body(ctx, tenant, &claims, !nocatalog))
    };
    Ok(reply.with_header("x-subject-token", subject.to_string()))
}

/// `GET auth/catalog`.
#[utoipa::path(
    get,
    path = "/auth/catalog",
    operation_id = "getCatalog",
    tag = "tokens",
    summary = "The service catalogue",
    responses(
        (status = 200, description = "the catalogue", body = Catalog),
        (status = 401, description = "missing or invalid X-Auth-Token", body = views::Error),
    )
)]
pub(super) fn catalog(ctx: &Ctx) -> Result<Reply> {
    let me = caller(ctx)?;
    Ok(views::reply(
        200,
        &Catalog {
            catalog: service_catalog(ctx.req, me),
            links: collection_links(format!("{}/auth/catalog", ctx.root)),
        },
    ))
}

pub(super) fn collection_links(this: String) -> CollectionLinks {
    CollectionLinks {
        this,
        previous: None,
        next: None,
    }
}

pub(super) fn project_view(ctx: &Ctx, t: &Tenant) -> Project {
    Project {
        id: t.id.clone(),
        name: t.id.clone(),
        domain_id: DOMAIN_ID.into(),
        description: String::new(),
        enabled: true,
        is_domain: false,
        parent_id: DOMAIN_ID.into(),
        tags: Vec::new(),
        options: NoOptions {},
        links: SelfLink {
            this: format!("{}/projects/{}", ctx.root, t.id),
        },
    }
}

/// `GET auth/projects` (and a member's `GET projects`; `?name=`
/// filters): the caller's one project.
pub(super) fn projects(ctx: &Ctx) -> Result<Reply> {
    let me = caller(ctx)?;
    let wanted = ctx.req.query_param("name");
    let projects: Vec<Project> = if wanted.is_none_or(|n| n == me.id) {
        vec![project_view(ctx, me)]
    } else {
        Vec::new()
    };
    Ok(views::reply(
        200,
        &ProjectList {
            projects,
            links: collection_links(format!("{}/projects", ctx.root)),
        },
    ))
}

/// `GET projects/{id}`: the caller's own project (others are 403, as a
/// Keystone member sees them).
pub(super) fn project(ctx: &Ctx, id: &str) -> Result<Reply> {
    let me = caller(ctx)?;
    if id != me.id {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "You are not authorized to perform the requested action: identity:get_project.",
        ));
    }
    Ok(views::reply(
        200,
        &ProjectOne {
            project: project_view(ctx, me),
        },
    ))
}

/// `GET users/{id}`: the caller's own user.
#[utoipa::path(
    get,
    path = "/users/{user_id}",
    operation_id = "showUser",
    tag = "users",
    summary = "The caller's own user",
    params(("user_id" = String, Path, description = "the tenant's user")),
    responses(
        (status = 200, description = "the user", body = UserOne),
        (status = 401, description = "missing or invalid X-Auth-Token", body = views::Error),
        (status = 403, description = "another tenant's user", body = views::Error),
    )
)]
pub(super) fn user(ctx: &Ctx, id: &str) -> Result<Reply> {
    let me = caller(ctx)?;
    if id != me.user {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "You are not authorized to perform the requested action: identity:get_user.",
        ));
    }
    Ok(views::reply(
        200,
        &UserOne {
            user: User {
                id: me.user.clone(),
                name: me.user.clone(),
                domain_id: DOMAIN_ID.into(),
                default_project_id: me.id.clone(),
                enabled: true,
                password_expires_at: None,
                options: NoOptions {},
                links: SelfLink {
                    this: format!("{}/users/{}", ctx.root, me.user),
                },
            },
        },
    ))
}

fn roles(t: &Tenant) -> Vec<Role> {
    let mut names = vec!["reader", "member"];
    if t.admin {
        names.push("admin");
    }
    names
        .into_iter()
        .map(|n| Role {
            id: format!("role-{n}"),
            name: n.into(),
        })
        .collect()
}

fn token_body(ctx: &Ctx, t: &Tenant, c: &Claims, with_catalog: bool) -> TokenOne {
    TokenOne {
        token: Token {
            methods: c.methods.clone(),
            audit_ids: vec![c.audit_id.clone()],
            issued_at: c.issued_at.iso8601(),
            expires_at: c.expires_at.iso8601(),
            is_domain: false,
            user: TokenUser {
                id: t.user.clone(),
                name: t.user.clone(),
                domain: domain_ref(),
                password_expires_at: None,
            },
            project: TokenProject {
                id: t.id.clone(),
                name: t.id.clone(),
                domain: domain_ref(),
            },
            roles: roles(t),
            catalog: with_catalog.then(|| service_catalog(ctx.req, t)),
        },
    }
}

fn endpoints(service: &str, url: &str) -> Vec<Endpoint> {
    ["public", "internal", "admin"]
        .iter()
        .map(|i| Endpoint {
            id: format!("blockd-{service}-{i}"),
            interface: (*i).into(),
            region: REGION.into(),
            region_id: REGION.into(),
            url: url.into(),
        })
        .collect()
}

/// The catalogue: identity, an image placeholder, and the Cinder v3 endpoint of the tenant's
/// project as `volumev3` and `block-storage`, on the host the client used.
pub(crate) fn service_catalog(req: &Request, t: &Tenant) -> Vec<Service> {
    let base = req.base_url();
    let cinder = format!("{base}{}/{}", crate::CINDER_V3_PATH, t.id);
    let identity = format!("{base}/identity");
    // The `openstack` CLI builds an image client for `volume create`
    // whether or not an image is named: the catalogue lists one (blockd's
    // images are reached through Cinder's `imageRef`, not a Glance API).
    let image = format!("{base}/image");
    [
        ("identity", "keystone", &identity),
        ("image", "glance", &image),
        ("volumev3", "cinderv3", &cinder),
        ("block-storage", "cinder", &cinder),
    ]
    .iter()
    .map(|(ty, name, url)| Service {
        id: format!("blockd-{ty}"),
        kind: (*ty).into(),
        name: (*name).into(),
        endpoints: endpoints(ty, url),
    })
    .collect()
}
