//! `use_queue_page`: what one queue's page shows, read every [`PAGE_REFRESH`]: the last hour's
//! history, the consumers, a page of waiting messages, the leased ones and the dead letters.
//! Every call here looks (`/history`, `/consumers`, `/browse`): nothing is taken.

use std::{cell::Cell, rc::Rc, time::Duration};

use restmq_shared::{BrowseReply, ConsumersReply, HistoryReply, QueueName};
use yew::{
    platform::{spawn_local, time::sleep},
    prelude::*,
};

use crate::api::{self, ApiError};

/// How often the page reads the queue again.
pub const PAGE_REFRESH: Duration = Duration::from_secs(2);
/// Messages per page of the waiting list.
pub const PAGE_SIZE: u32 = 20;

/// The latest reads of a queue's page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueuePage {
    pub history: Option<HistoryReply>,
    pub consumers: Option<ConsumersReply>,
    pub waiting: Option<BrowseReply>,
    pub leased: Option<BrowseReply>,
    /// `<queue>.dead`, unless the queue is itself a dead-letter queue.
    pub dead: Option<BrowseReply>,
    pub error: Option<ApiError>,
}

/// Reads `queue`'s page (waiting messages after the key `after`) until unmounted; the callback
/// reads again now. A refusal stops the reads (the app asks for a token).
#[hook]
pub fn use_queue_page(queue: QueueName, after: Option<String>) -> (Rc<QueuePage>, Callback<()>) {
    let page = use_state(QueuePage::default);
    let nonce = use_state(|| 0u32);
    {
        let page = page.clone();
        use_effect_with((queue, after, *nonce), move |(queue, after, _)| {
            let stopped = Rc::new(Cell::new(false));
            let stop = stopped.clone();
            let (queue, after) = (queue.clone(), after.clone());
            spawn_local(async move {
                while !stopped.get() {
                    let read = read(&queue, after.as_deref()).await;
                    if stopped.get() {
                        break;
                    }
                    let refused = read.error.as_ref().is_some_and(ApiError::is_refusal);
                    page.set(read);
                    if refused {
                        break;
                    }
                    sleep(PAGE_REFRESH).await;
                }
            });
            move || stop.set(true)
        });
    }
    let refresh = Callback::from(move |()| nonce.set(nonce.wrapping_add(1)));
    (Rc::new((*page).clone()), refresh)
}

async fn read(queue: &QueueName, after: Option<&str>) -> QueuePage {
    let mut page = QueuePage::default();
    let mut keep = |error: ApiError| {
        page.error.get_or_insert(error);
    };
    let waiting = api::browse_where(queue, after, PAGE_SIZE, false).await.map_err(&mut keep).ok();
    let leased = api::browse_where(queue, None, PAGE_SIZE, true).await.map_err(&mut keep).ok();
    let history = api::history(queue).await.map_err(&mut keep).ok();
    let consumers = api::consumers(queue).await.map_err(&mut keep).ok();
    let dead = match dead_letters_of(queue) {
        Some(dead) => api::browse_where(&dead, None, PAGE_SIZE, false).await.map_err(&mut keep).ok(),
        None => None,
    };
    QueuePage { history, consumers, waiting, leased, dead, ..page }
}

/// `<queue>.dead`, where messages go after too many deliveries; none for a dead-letter queue.
pub fn dead_letters_of(queue: &QueueName) -> Option<QueueName> {
    if queue.as_str().ends_with(".dead") {
        return None;
    }
    QueueName::try_from(format!("{queue}.dead")).ok()
}
