//! Looking without taking: browsing a queue's messages page by page. Nothing here changes
//! a queue, its counters or its soft-read counts.

use restmq_shared::{BrowseReply, MessageKey, QueueName};

use super::{Broker, BrokerError, BrokerResult};
use crate::store::{Page, QueueStore};

/// Messages on a browse page when no `limit` is given.
pub const DEFAULT_BROWSE_LIMIT: usize = 50;

/// The most messages on one browse page.
pub const MAX_BROWSE_LIMIT: usize = 1000;

impl Broker {
    /// A page of `queue`'s waiting messages (or with `leased`, of those out on a lease)
    /// after `after`, oldest first, with a key to ask for the next page.
    pub async fn browse(
        &self,
        queue: &QueueName,
        after: Option<&MessageKey>,
        limit: usize,
        leased: bool,
    ) -> BrokerResult<BrowseReply> {
        if let Some(key) = after.filter(|k| &k.queue != queue) {
            return Err(BrokerError::ForeignKey { queue: queue.clone(), key: key.clone() });
        }
        let limit = limit.clamp(1, MAX_BROWSE_LIMIT);
        let store = self.store();
        let len = store.info(queue).await?.map_or(0, |i| i.len);
        let page = Page { after: after.map_or(0, |k| k.n), limit: limit + 1, leased };
        let mut messages = store.browse(queue, page).await?;
        let next = (messages.len() > limit).then(|| {
            messages.truncate(limit);
            messages[limit - 1].key.clone()
        });
        Ok(BrowseReply { queue: queue.clone(), len, messages, next })
    }
}
