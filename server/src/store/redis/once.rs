//! Idempotent publishing on Redis, exactly once across processes and across a timed-out first
//! try: a publish claims `<q>:|idem|<key>` (`|pending|<token>`, for [`CLAIM_SECS`]), and its add
//! script adds only while the record still holds that token, replacing it with the answer in
//! the same step. A retry finds the answer, or the claim (409), or nothing (the first try never
//! reached Redis and its claim expired: the retry adds). A first try that reaches Redis after
//! its claim is gone adds nothing.

use std::sync::LazyLock;

use redis::{Script, ScriptInvocation};
use restmq_shared::{MessageKey, QueueName};

use super::conn::error;
use super::keys::QueueKeys;
use super::RedisStore;
use crate::store::{Claimed, IdempotencyClaim, StoreError, StoreResult, PUBLISH_ONCE};

/// Seconds a claim holds while its publish has not added: the longest a retry waits (409)
/// after a first try that never reached Redis.
pub const CLAIM_SECS: u64 = 10;

/// KEYS: record. ARGV: token, claim seconds. Returns `{'mine'}` (claimed), `{'busy'}` (another
/// claim holds it) or `{'done', answer}`.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], '|pending|' .. ARGV[1], 'EX', ARGV[2])
  return {'mine'}
end
if string.sub(v, 1, 9) == '|pending|' then return {'busy'} end
return {'done', v}
",
    )
});

impl RedisStore {
    pub(super) async fn claim_once(
        &self,
        queue: &QueueName,
        claim: &IdempotencyClaim,
    ) -> StoreResult<Claimed> {
        let found: Vec<String> = CLAIM
            .key(self.keys(queue).idempotency(&claim.key))
            .arg(&claim.token)
            .arg(CLAIM_SECS)
            .invoke_async(&mut self.conn())
            .await
            .map_err(error)?;
        Ok(match found.first().map(String::as_str) {
            Some("mine") => Claimed::Mine,
            Some("done") => {
                let own = |k: &MessageKey| k.queue == *queue;
                let answer = found.get(1).map_or("", String::as_str);
                Claimed::Answered(
                    answer.split(',').filter_map(|k| MessageKey::try_from(k).ok()).filter(own).collect(),
                )
            }
            _ => Claimed::InUse,
        })
    }
}

/// The claim of the publish running in this task, if it has one.
pub fn current() -> Option<IdempotencyClaim> {
    PUBLISH_ONCE.try_with(Clone::clone).ok()
}

/// Adds the record key of `claim` to an add script's keys (before `QUEUESET`).
pub fn with_record<'a>(
    inv: &'a mut ScriptInvocation<'static>,
    keys: &QueueKeys,
    claim: Option<&IdempotencyClaim>,
) -> &'a mut ScriptInvocation<'static> {
    if let Some(claim) = claim {
        inv.key(keys.idempotency(&claim.key));
    }
    inv
}

/// An add script's claim arguments: token (empty for none), answer window seconds, and the
/// client key prefix the answer is written with.
pub fn claim_args(inv: &mut ScriptInvocation<'static>, queue: &QueueName, claim: Option<&IdempotencyClaim>) {
    match claim {
        Some(claim) => inv.arg(&claim.token).arg(claim.window.as_secs().max(1)),
        None => inv.arg("").arg(0),
    };
    inv.arg(format!("{queue}:"));
}

/// An add script's answer: its first `n`, or why it added nothing.
pub fn first_added(answer: i64, limit: u64) -> StoreResult<u64> {
    match answer {
        -2 => Err(StoreError::ClaimLost),
        n => u64::try_from(n).map_err(|_| StoreError::QueueFull(limit)),
    }
}
