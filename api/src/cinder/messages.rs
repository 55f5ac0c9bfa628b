//! Cinder user messages (3.3+): `GET messages`, `GET messages/{id}`,
//! `DELETE messages/{id}` (204), the caller's own. blockd writes one when
//! a volume's type asks for a capability its one backend does not have
//! (`types::unmet`): the volume is made in status `error`, as Cinder's
//! scheduler leaves it, and the message says why.
//!
//! Messages live in the settings object (`domain/settings.rs`, key
//! `api.message/{project}/{id}`), at most [`MAX_PER_PROJECT`] per project
//! (the oldest go first).

use super::views::{reply, Link, Message as MessageView, MessageList, MessageOne};
use super::volumes::cinder_time;
use super::Ctx;
use crate::domain::{settings, Locked};
use crate::error::{ApiError, Result};
use crate::http::Reply;
use serde::{Deserialize, Serialize};

/// Messages kept per project.
const MAX_PER_PROJECT: usize = 100;
/// How long Cinder guarantees a message (30 days), in seconds.
const KEEP_SECS: u64 = 30 * 86_400;

/// One message.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Message {
    id: String,
    request_id: String,
    event_id: String,
    user_message: String,
    resource_type: String,
    resource_uuid: String,
    created: u64,
}

fn prefix(project: &str) -> String {
    format!("api.message/{project}/")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Records that volume `volume` of the caller failed scheduling because
/// of `why`, under the lock the volume was made under.
pub(crate) fn volume_unschedulable(
    ctx: &Ctx,
    locked: &Locked,
    volume: &str,
    why: &str,
) -> Result<()> {
    let msg = Message {
        id: uuid::Uuid::new_v4().to_string(),
        request_id: format!("req-{}", uuid::Uuid::new_v4()),
        event_id: "VOLUME_VOLUME_001_002".into(),
        user_message: format!(
            "schedule allocate volume: Could not find any available weighted backend ({why})."
        ),
        resource_type: "VOLUME".into(),
        resource_uuid: volume.into(),
        created: now(),
    };
    let p = prefix(&ctx.tenant.id);
    let text = serde_json::to_string(&msg).map_err(|e| ApiError::internal(e.to_string()))?;
    settings::update(ctx.store(), locked, |m| {
        let mut mine: Vec<(u64, String)> = m
            .iter()
            .filter(|(k, _)| k.starts_with(&p))
            .filter_map(|(k, v)| {
                let old: Message = serde_json::from_str(v).ok()?;
                Some((old.created, k.clone()))
            })
            .collect();
        mine.sort();
        while mine.len() >= MAX_PER_PROJECT {
            let (_, k) = mine.remove(0);
            m.remove(&k);
        }
        m.insert(format!("{p}{}", msg.id), text);
        Ok(())
    })?;
    Ok(())
}

fn view(ctx: &Ctx, m: &Message) -> MessageView {
    MessageView {
        id: m.id.clone(),
        request_id: m.request_id.clone(),
        event_id: m.event_id.clone(),
        message_level: "ERROR".into(),
        user_message: m.user_message.clone(),
        resource_type: m.resource_type.clone(),
        resource_uuid: m.resource_uuid.clone(),
        created_at: cinder_time(m.created),
        guaranteed_until: cinder_time(m.created + KEEP_SECS),
        links: vec![Link::new(
            "self",
            format!("{}/messages/{}", ctx.base(), m.id),
        )],
    }
}

fn mine(ctx: &Ctx) -> Vec<Message> {
    let p = prefix(&ctx.tenant.id);
    let mut v: Vec<Message> = settings::records(&settings::read_store(ctx.store()), &p);
    v.sort_by_key(|m| std::cmp::Reverse(m.created));
    v
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Message {} could not be found.", id.escape_debug()))
}

/// `GET messages`.
pub fn list(ctx: &Ctx) -> Result<Reply> {
    let messages = mine(ctx).iter().map(|m| view(ctx, m)).collect();
    Ok(reply(200, &MessageList { messages }))
}

/// `GET messages/{id}`.
pub fn show(ctx: &Ctx, id: &str) -> Result<Reply> {
    let m = mine(ctx)
        .into_iter()
        .find(|m| m.id == id)
        .ok_or_else(|| not_found(id))?;
    Ok(reply(
        200,
        &MessageOne {
            message: view(ctx, &m),
        },
    ))
}

/// `DELETE messages/{id}`.
pub fn delete(ctx: &Ctx, id: &str) -> Result<Reply> {
    let key = format!("{}{id}", prefix(&ctx.tenant.id));
    let locked = ctx.dom.lock();
    settings::update(ctx.store(), &locked, |m| {
        m.remove(&key).map(|_| ()).ok_or_else(|| not_found(id))
    })?;
    Ok(Reply::empty(204))
}
