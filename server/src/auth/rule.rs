//! What a route needs, declared where the route is registered: a [`Rule`] per handler (a right
//! on the route's `{queue}` or on every queue, the `acl.conf` section that guards it, or
//! nothing), or — for the routes whose queue and right come from their arguments (`/`,
//! `/queue`, collectd) — a [`Need`] the handler states after its one parse.

use axum::http::request::Parts;
use axum::http::Method;

use super::acl::Section;
use super::tokens::{Right, Scope};
use crate::extract::Args;

/// What a request must show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Nothing: health checks, the web app and unknown paths (which answer 404).
    Open,
    /// Any valid credentials; the handler will refuse the request as malformed anyway.
    Authenticated,
    /// A right on a scope.
    Right(Right, Scope),
    /// Every one of these rights: redrive takes from `<q>.dead` (admin) and adds to `<q>`
    /// (produce).
    Rights(Vec<(Right, Scope)>),
}

impl Need {
    /// `right` on one queue.
    pub fn on(right: Right, queue: &str) -> Self {
        Self::Right(right, Scope::Queue(queue.to_owned()))
    }
}

/// What one request needs, and the `acl.conf` section that applies, as RestMQ chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub need: Need,
    pub section: Option<Section>,
}

impl Access {
    /// `need` under the REST section of `method`: a read is a consumer, anything else a
    /// producer.
    pub fn by_method(need: Need, method: &Method) -> Self {
        let section = if is_read(method) { Section::RestConsumer } else { Section::RestProducer };
        Self { need, section: Some(section) }
    }

    /// The rights to check, each on its scope (none for [`Need::Open`] and
    /// [`Need::Authenticated`]).
    pub fn rights(&self) -> Vec<(Right, Scope)> {
        match &self.need {
            Need::Right(right, scope) => vec![(*right, scope.clone())],
            Need::Rights(rights) => rights.clone(),
            Need::Open | Need::Authenticated => Vec::new(),
        }
    }

    /// What the `add` frames of a WebSocket need, checked at its upgrade: exactly what
    /// `POST /q/<queue>` needs. `None` for every other route.
    pub fn for_add_frames(&self) -> Option<Access> {
        match (&self.need, self.section) {
            (Need::Right(_, Scope::Queue(queue)), Some(Section::WebsocketConsumer)) => {
                Some(Access { need: Need::on(Right::Produce, queue), section: Some(Section::RestProducer) })
            }
            _ => None,
        }
    }
}

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// When a read that would take only looks, and `observe` (which `consume` implies) suffices.
/// Each route counts only the flag its handler obeys: a flag the handler ignores must not
/// lower the right it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Looks {
    Never,
    /// A REST get: a soft get (`soft=1`, without `reserve`), or any `HEAD` (which says whether
    /// a message waits).
    SoftOrHead,
    /// A stream: an observer (`observe=1`, without `ack`).
    Observe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Open,
    /// A right on the path's `{queue}` (on every queue when the path names none).
    Queue {
        right: Right,
        looks: Looks,
    },
    /// `POST /q/<q>/<key>` nacks (consume); `POST /q/<q>.dead/redrive` takes from `<q>.dead`
    /// (admin) and adds to `<q>` (produce).
    NackOrRedrive,
    /// The handler states the need once it has read its arguments.
    Handler,
}

/// What a route needs, declared with its handler: `get(h.layer(guard(Rule::consume())))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    kind: Kind,
    /// The `acl.conf` section; by default a read is a REST consumer, anything else a producer.
    section: Option<Section>,
}

impl Rule {
    const fn queue(right: Right) -> Self {
        Self { kind: Kind::Queue { right, looks: Looks::Never }, section: None }
    }

    /// Nothing: health checks.
    pub const fn open() -> Self {
        Self { kind: Kind::Open, section: None }
    }

    pub const fn produce() -> Self {
        Self::queue(Right::Produce)
    }

    pub const fn consume() -> Self {
        Self::queue(Right::Consume)
    }

    pub const fn observe() -> Self {
        Self::queue(Right::Observe)
    }

    pub const fn admin() -> Self {
        Self::queue(Right::Admin)
    }

    pub const fn nack_or_redrive() -> Self {
        Self { kind: Kind::NackOrRedrive, section: None }
    }

    /// The handler states the need after its one parse (see [`super::Deferred`]).
    pub const fn handler() -> Self {
        Self { kind: Kind::Handler, section: None }
    }

    /// A REST read that only looks (soft get, `HEAD`) needs only `observe`.
    pub const fn or_look(self) -> Self {
        self.looking(Looks::SoftOrHead)
    }

    /// A stream that only observes (`observe=1`) needs only `observe`; a `HEAD` on a stream is
    /// served as its `GET`.
    pub const fn or_observe(self) -> Self {
        self.looking(Looks::Observe)
    }

    const fn looking(self, looks: Looks) -> Self {
        match self.kind {
            Kind::Queue { right, .. } => Self { kind: Kind::Queue { right, looks }, ..self },
            _ => self,
        }
    }

    /// Under `acl.conf`'s `section` instead of the REST one of the method.
    pub const fn in_section(self, section: Section) -> Self {
        Self { section: Some(section), ..self }
    }

    /// What a request needs under this rule, given its path parameters; `None` when the
    /// handler decides.
    pub fn access(&self, parts: &Parts, params: &[(String, String)]) -> Option<Access> {
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let scope = param("queue").map_or(Scope::All, |q| Scope::Queue(q.to_owned()));
        let access = |need: Need| {
            let by_method = Access::by_method(need, &parts.method);
            Access { section: self.section.or(by_method.section), ..by_method }
        };
        Some(match self.kind {
            Kind::Open => Access { need: Need::Open, section: None },
            Kind::Handler => return None,
            Kind::Queue { right, looks } => {
                let looks = is_read(&parts.method) && only_looks(parts, looks);
                access(Need::Right(if looks { Right::Observe } else { right }, scope))
            }
            Kind::NackOrRedrive => {
                // Redrive adds the dead letters to the live queue: that needs produce there too.
                let live = param("queue").and_then(|q| q.strip_suffix(".dead"));
                match (param("item"), live) {
                    (Some("redrive"), Some(live)) => access(Need::Rights(vec![
                        (Right::Admin, scope),
                        (Right::Produce, Scope::Queue(live.to_owned())),
                    ])),
                    (Some("redrive"), None) => access(Need::Right(Right::Admin, scope)),
                    _ => Access {
                        need: Need::Right(Right::Consume, scope),
                        section: Some(Section::RestConsumer),
                    },
                }
            }
        })
    }
}

/// Whether a read only looks. Only the query counts, so a request with a body (whose fields
/// the handler would read too) never qualifies.
fn only_looks(parts: &Parts, looks: Looks) -> bool {
    let flag = match looks {
        Looks::Never => return false,
        Looks::SoftOrHead if parts.method == Method::HEAD => return true,
        Looks::SoftOrHead => "soft",
        Looks::Observe => "observe",
    };
    let has_body = parts.headers.contains_key(axum::http::header::TRANSFER_ENCODING)
        || parts
            .headers
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.to_str().map_or(true, |v| v.trim() != "0"));
    if has_body {
        return false;
    }
    let Ok(args) = Args::from_query(parts.uri.query().unwrap_or_default()) else { return false };
    args.flag(flag) && args.get("reserve").is_none() && !args.flag("ack")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, uri: &str) -> Parts {
        axum::http::Request::builder().method(method).uri(uri).body(()).unwrap().into_parts().0
    }

    fn on(queue: &str, item: Option<&str>) -> Vec<(String, String)> {
        let mut params = vec![("queue".to_owned(), queue.to_owned())];
        params.extend(item.map(|item| ("item".to_owned(), item.to_owned())));
        params
    }

    #[test]
    fn reads_that_only_look_need_observe() {
        let rule = Rule::consume().or_look();
        let need = |method, uri| rule.access(&parts(method, uri), &on("q", None)).unwrap().need;
        assert_eq!(need(Method::GET, "/q/q"), Need::on(Right::Consume, "q"));
        assert_eq!(need(Method::GET, "/q/q?soft=1"), Need::on(Right::Observe, "q"));
        assert_eq!(need(Method::GET, "/q/q?soft=1&reserve=5"), Need::on(Right::Consume, "q"));
        assert_eq!(need(Method::HEAD, "/q/q"), Need::on(Right::Observe, "q"));
        // A REST get ignores `observe`, a stream ignores `soft`: neither lowers the right.
        assert_eq!(need(Method::GET, "/q/q?observe=1"), Need::on(Right::Consume, "q"));
        let stream = Rule::consume().or_observe();
        let need = |method, uri| stream.access(&parts(method, uri), &on("q", None)).unwrap().need;
        assert_eq!(need(Method::HEAD, "/ws/q"), Need::on(Right::Consume, "q"));
        assert_eq!(need(Method::GET, "/ws/q?soft=1"), Need::on(Right::Consume, "q"));
        assert_eq!(need(Method::GET, "/ws/q?observe=1"), Need::on(Right::Observe, "q"));
    }

    #[test]
    fn redrive_needs_admin_and_produce() {
        let rule = Rule::nack_or_redrive();
        let access = |queue, item| rule.access(&parts(Method::POST, "/"), &on(queue, Some(item))).unwrap();
        assert_eq!(access("q", "q:1").need, Need::on(Right::Consume, "q"));
        assert_eq!(access("q", "q:1").section, Some(Section::RestConsumer));
        assert_eq!(
            access("q.dead", "redrive").need,
            Need::Rights(vec![
                (Right::Admin, Scope::Queue("q.dead".into())),
                (Right::Produce, Scope::Queue("q".into()))
            ])
        );
    }
}
