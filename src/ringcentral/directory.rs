//! Names from the company directory (the README's "Names from the company directory";
//! `docs/ringcentral.md` §12): a caller RingCentral sends with an extension id and no name is
//! looked up with `GET …/extension/{id}` and the name handed to the roster
//! ([`Roster::set_directory_name`]), which shows it wherever the caller is shown.
//!
//! It owns the cache of extension names and the lookups. It must never:
//!
//! - look up or override a name something else gave: it fills in only identities with an
//!   extension id and no name (the precedence itself is [`crate::conference::names`]'s);
//! - spend the Light budget kicks and reconciliation need: a lookup is sent only while the group
//!   is not penalized and more than the kick reserve and the reconciler's share remain, and at
//!   most [`LOOKUPS_PER_WINDOW`] a window ([`may_look_up`]);
//! - ask again after a 403: the app or the user lacks the permission, which does not come back
//!   by itself, so the lookups stop for the run after one warning.
//!
//! One task, one lookup at a time: an id asked for while queued or being read is read once.

use super::client::{RcClient, RcError, valid_extension_id};
use super::rate::{RateGroup, WINDOW};
use super::reconciler::kick_reserve;
use crate::conference::{ConferenceId, Identity, Roster};
use crate::util::backoff::Backoff;
use crate::util::shutdown::Shutdown;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A name is re-read when it is needed and older than this: names change rarely (a rename, a
/// new hire on an old extension), and "refreshed at most hourly" bounds the lookups a busy
/// extension causes to one an hour.
pub const REFRESH_AFTER: Duration = Duration::from_secs(3600);
/// How long "no name" (a 404, an unnamed extension, an unreadable answer) is believed: an hour,
/// so an id that will never have a name costs at most one lookup an hour.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(3600);
/// Extensions remembered at most (the oldest read is forgotten first): well above the people on
/// calls in an hour for the accounts ringside serves, and a bound on what notifications (i.e.
/// the network) can make it keep.
pub const MAX_CACHED: usize = 10_000;
/// Lookups per rate window at most: the Light group (50 a minute by default) is shared with
/// kicks and the reconciler's polls, and a name is a nicety — ten a minute names a conference
/// of ten unnamed internal callers within a minute and leaves the rest of the group alone.
pub const LOOKUPS_PER_WINDOW: u32 = 10;
/// How often a lookup refused by the budget is tried again: short, because the budget frees
/// up continuously; the check itself costs nothing.
const BUDGET_RECHECK: Duration = Duration::from_secs(1);
/// Waits after failed lookups (5xx, timeouts, network): from 5 s up to 5 min.
const RETRY: Backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(300));

/// Whether a lookup may be sent now, out of a Light group of `limit` with `available` left.
///
/// Never while the group is penalized (any request would restart the penalty), never more than
/// [`LOOKUPS_PER_WINDOW`] a window, and only while more than the kick reserve remains twice
/// over: the reserve for kicks, and as much again for the reconciler's polls, which may go down
/// to the reserve. When the budget is tight, lookups stop first, then polls; kicks last.
pub fn may_look_up(penalized: bool, limit: u32, available: u32, sent_in_window: u32) -> bool {
    let reserve = kick_reserve(limit);
    let reconciler_share = reserve;
    !penalized
        && sent_in_window < LOOKUPS_PER_WINDOW
        && available > reserve.saturating_add(reconciler_share)
}

/// What the cache knows of an extension.
#[derive(Debug, Clone)]
struct Entry {
    /// `None`: the extension has no name, or does not exist.
    name: Option<String>,
    read_at: Instant,
}

impl Entry {
    fn fresh(&self, now: Instant) -> bool {
        let ttl = if self.name.is_some() {
            REFRESH_AFTER
        } else {
            NEGATIVE_TTL
        };
        now.saturating_duration_since(self.read_at) < ttl
    }
}

/// Extension names read, bounded to [`MAX_CACHED`], the oldest read forgotten first.
#[derive(Debug, Default)]
struct Cache {
    entries: HashMap<String, Entry>,
    /// Reads in order (an id read again appears again; its older place is skipped on eviction).
    order: VecDeque<(Instant, String)>,
}

impl Cache {
    fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.get(id)
    }

    fn put(&mut self, id: String, name: Option<String>, now: Instant) {
        self.entries
            .insert(id.clone(), Entry { name, read_at: now });
        self.order.push_back((now, id));
        while self.entries.len() > MAX_CACHED {
            let Some((read_at, oldest)) = self.order.pop_front() else {
                break;
            };
            if self
                .entries
                .get(&oldest)
                .is_some_and(|entry| entry.read_at == read_at)
            {
                self.entries.remove(&oldest);
            }
        }
        // Stale places of re-read ids must not make `order` outgrow the cache for long.
        if self.order.len() > MAX_CACHED.saturating_mul(2) {
            let entries = &self.entries;
            self.order.retain(|(read_at, id)| {
                entries
                    .get(id)
                    .is_some_and(|entry| entry.read_at == *read_at)
            });
        }
    }
}

/// The directory task: [`Directory::run`] until the graceful stop.
pub struct Directory {
    client: Arc<RcClient>,
    roster: Roster,
    cache: Cache,
    /// Ids waiting for a lookup, in order, each once.
    queue: VecDeque<String>,
    queued: HashSet<String>,
    /// When this task's lookups were sent, over the last window.
    sent: VecDeque<Instant>,
    /// No lookup before this (a backoff after a failure, or a budget recheck).
    not_before: Option<Instant>,
    backoff: Backoff,
    /// Cleared by a 403: no lookups for the rest of the run.
    permitted: bool,
}

impl Directory {
    pub fn new(client: Arc<RcClient>, roster: Roster) -> Self {
        Directory {
            client,
            roster,
            cache: Cache::default(),
            queue: VecDeque::new(),
            queued: HashSet::new(),
            sent: VecDeque::new(),
            not_before: None,
            backoff: RETRY,
            permitted: true,
        }
    }

    /// Watches the roster and looks up what needs a name, until `shutdown` fires. After a 403
    /// it only waits for the stop (a task that ended early would read as a crash).
    pub async fn run(mut self, mut shutdown: Shutdown) {
        let changes = self.roster.watch();
        // Conferences already in the roster (a restart) are looked at once.
        let live = self.roster.live_ids();
        self.note(&live);
        loop {
            let wake = self
                .not_before
                .unwrap_or_else(Instant::now)
                .max(Instant::now());
            let ready = self.permitted && !self.queue.is_empty();
            tokio::select! {
                () = shutdown.recv() => return,
                changed = changes.changed() => self.note(&changed),
                () = tokio::time::sleep_until(wake), if ready => self.step().await,
            }
        }
    }

    /// Queues the ids of the unnamed identities in these conferences whose name is not known
    /// (or is known and due for a refresh).
    fn note(&mut self, conferences: &[ConferenceId]) {
        if !self.permitted {
            return;
        }
        let now = Instant::now();
        for id in conferences {
            let Some(view) = self.roster.conference(id) else {
                continue;
            };
            let identities = view
                .host
                .iter()
                .chain(view.participants.iter().map(|p| &p.identity));
            for identity in identities {
                if let Some(extension) = self.wanted(identity, now)
                    && self.queue.len() < MAX_CACHED
                    && self.queued.insert(extension.clone())
                {
                    self.queue.push_back(extension);
                }
            }
        }
    }

    /// The extension id to look up for `identity` (as the roster shows it), if any: it has an
    /// extension id and either no name, or the directory's own name that is due for a refresh.
    /// A name from caller ID or the contacts is never a reason to ask.
    fn wanted(&self, identity: &Identity, now: Instant) -> Option<String> {
        let extension = identity.extension_id.as_deref()?;
        if !valid_extension_id(extension) || extension == "~" {
            return None;
        }
        let cached = self.cache.get(extension);
        let ours = match (&identity.name, cached) {
            (None, _) => true,
            (Some(shown), Some(entry)) => entry.name.as_deref() == Some(shown.as_str()),
            (Some(_), None) => false,
        };
        let due = cached.is_none_or(|entry| !entry.fresh(now));
        (ours && due).then(|| extension.to_owned())
    }

    fn sent_in_window(&mut self, now: Instant) -> u32 {
        while self
            .sent
            .front()
            .is_some_and(|sent| now.saturating_duration_since(*sent) >= WINDOW)
        {
            self.sent.pop_front();
        }
        u32::try_from(self.sent.len()).unwrap_or(u32::MAX)
    }

    /// One lookup, when the budget allows; else a recheck later.
    async fn step(&mut self) {
        let now = Instant::now();
        let limits = self.client.limits();
        let penalty = limits.penalty(RateGroup::Light);
        let (limit, _) = limits.budget(RateGroup::Light);
        let available = limits.available(RateGroup::Light);
        let sent = self.sent_in_window(now);
        if !may_look_up(penalty.is_some(), limit, available, sent) {
            self.not_before = Some(penalty.unwrap_or(now + BUDGET_RECHECK));
            return;
        }
        let Some(extension) = self.queue.pop_front() else {
            return;
        };
        self.sent.push_back(now);
        let answer = self.client.extension(&extension).await;
        self.settle(extension, answer);
    }

    fn settle(&mut self, extension: String, answer: Result<super::client::ExtensionInfo, RcError>) {
        let now = Instant::now();
        let outcome = match answer {
            Ok(info) => {
                self.backoff.reset();
                let outcome = if info.name.is_some() {
                    "found"
                } else {
                    "not_found"
                };
                if let Some(name) = &info.name {
                    self.roster.set_directory_name(&extension, name.clone());
                }
                self.cache.put(extension.clone(), info.name, now);
                outcome
            }
            Err(RcError::NotFound { .. }) => {
                self.backoff.reset();
                self.cache.put(extension.clone(), None, now);
                "not_found"
            }
            Err(RcError::Api {
                status: 403, code, ..
            }) => {
                tracing::warn!(
                    code = code.as_deref().unwrap_or("-"),
                    "RingCentral refused to read an extension: add ReadAccounts to the app (and ReadExtensions to the JWT user's role) in the Developer Console; callers known only by extension stay unnamed until then"
                );
                self.permitted = false;
                self.queue.clear();
                self.queued.clear();
                metrics::counter!("ringside_directory_lookups_total", "outcome" => "forbidden")
                    .increment(1);
                return;
            }
            Err(RcError::Penalty { retry_in, .. }) => {
                // Nothing was sent: the penalty started meanwhile. Wait it out, then ask again.
                self.sent.pop_back();
                self.not_before = Some(now + retry_in);
                self.queue.push_front(extension);
                return;
            }
            Err(RcError::RateLimited { retry_after, .. }) => {
                // The client started the group's penalty; this id waits for it to pass.
                self.not_before = Some(now + retry_after);
                self.queue.push_front(extension);
                metrics::counter!("ringside_directory_lookups_total", "outcome" => "failed")
                    .increment(1);
                return;
            }
            Err(
                error @ (RcError::Timeout(_)
                | RcError::Network(_)
                | RcError::Auth(_)
                | RcError::Api {
                    status: 500..=u16::MAX,
                    ..
                }),
            ) => {
                self.retry_later(extension, &error);
                return;
            }
            Err(error) => {
                // A refusal or an answer that will not read better next time: believed for
                // as long as a 404.
                tracing::info!(%error, extension_id = %extension, "could not read an extension's name");
                self.cache.put(extension.clone(), None, now);
                "failed"
            }
        };
        self.queued.remove(&extension);
        metrics::counter!("ringside_directory_lookups_total", "outcome" => outcome).increment(1);
    }

    fn retry_later(&mut self, extension: String, error: &RcError) {
        let wait = self.backoff.next_wait();
        tracing::info!(%error, retry_in_secs = wait.as_secs(), "extension lookup failed; retrying later");
        self.not_before = Some(Instant::now() + wait);
        self.queue.push_back(extension);
        metrics::counter!("ringside_directory_lookups_total", "outcome" => "failed").increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conference::input::PartyUpdate;
    use crate::conference::{Detector, Input, PartyId, SessionId, SessionUpdate, Timestamp};
    use crate::config::RingCentralCredentials;
    use crate::ringcentral::auth::{AuthOptions, TokenOwner};
    use crate::ringcentral::rate::RateLimits;
    use crate::ringcentral::wire::{ConferenceRole, Direction, OriginType, StatusCode};
    use crate::simulator::platform::{
        DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_JWT, Platform, PlatformHandle,
        PlatformOptions,
    };
    use secrecy::SecretString;

    const T0: i64 = 1_709_049_892_000;
    const DEADLINE: Duration = Duration::from_secs(10);

    #[test]
    fn lookups_are_refused_when_only_the_kick_reserve_and_the_reconcilers_share_are_left() {
        let limit = 50;
        let reserve = kick_reserve(limit);
        assert!(may_look_up(false, limit, limit, 0), "a fresh window");
        assert!(
            !may_look_up(false, limit, reserve, 0),
            "only the kick reserve"
        );
        assert!(
            !may_look_up(false, limit, 2 * reserve, 0),
            "the kick reserve and the reconciler's share"
        );
        assert!(may_look_up(false, limit, 2 * reserve + 1, 0));
        assert!(!may_look_up(true, limit, limit, 0), "penalized");
        assert!(
            !may_look_up(false, limit, limit, LOOKUPS_PER_WINDOW),
            "the directory's own cap"
        );
        // A tiny group is never spent on names.
        assert!(!may_look_up(false, 5, 5, 0));
    }

    #[test]
    fn the_cache_forgets_the_oldest_read_first_and_stays_bounded() {
        let mut cache = Cache::default();
        let start = Instant::now();
        for index in 0..MAX_CACHED + 5 {
            let at = start + Duration::from_millis(u64::try_from(index).unwrap_or(0));
            cache.put(index.to_string(), Some(format!("n{index}")), at);
        }
        assert_eq!(cache.entries.len(), MAX_CACHED);
        assert!(cache.get("0").is_none() && cache.get("4").is_none());
        assert!(cache.get("5").is_some());
        // A re-read moves an id to the back: it outlives ids read once before it.
        cache.put(
            "5".into(),
            Some("n5".into()),
            start + Duration::from_secs(60),
        );
        cache.put("new".into(), None, start + Duration::from_secs(61));
        assert!(cache.get("5").is_some() && cache.get("6").is_none());
        assert!(cache.order.len() <= 2 * MAX_CACHED);
    }

    fn identity(name: Option<&str>, number: &str, extension: Option<&str>) -> Identity {
        Identity::of(name, Some(number), extension)
    }

    fn party(id: String, from: Identity, role: ConferenceRole) -> PartyUpdate {
        PartyUpdate {
            id: PartyId::parse(&id).expect("a party id"),
            direction: Some(if role == ConferenceRole::Host {
                Direction::Outbound
            } else {
                Direction::Inbound
            }),
            from,
            to: Identity::default(),
            to_conference: true,
            code: Some(StatusCode::Answered),
            reason: None,
            peer: None,
            role: Some(role),
            muted: None,
        }
    }

    /// A live conference hosted by a named host with these callers on it.
    fn conference(session: &str, callers: Vec<Identity>) -> Input {
        let host = identity(Some("Agent 122"), "+16505550100", Some("62295300122"));
        let mut parties = vec![party(format!("{session}-host"), host, ConferenceRole::Host)];
        for (index, caller) in callers.into_iter().enumerate() {
            parties.push(party(
                format!("{session}-{index}"),
                caller,
                ConferenceRole::Participant,
            ));
        }
        Input::Notification {
            received_at: Timestamp(T0),
            notification: SessionUpdate {
                session_id: SessionId::parse(session).expect("a session id"),
                sequence: Some(1),
                event_time: Some(Timestamp(T0)),
                origin: Some(OriginType::Conference),
                parties,
            },
        }
    }

    fn client(platform: &PlatformHandle) -> Arc<RcClient> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client builds");
        let limits = Arc::new(RateLimits::new(50));
        let timeout = Duration::from_secs(5);
        let auth = Arc::new(TokenOwner::new(
            http.clone(),
            AuthOptions {
                server_url: platform.base_url(),
                credentials: RingCentralCredentials {
                    client_id: DEFAULT_CLIENT_ID.to_owned(),
                    client_secret: SecretString::from(DEFAULT_CLIENT_SECRET),
                    jwt: SecretString::from(DEFAULT_JWT),
                },
                margin: Duration::from_secs(60),
                retry_base: Duration::from_secs(1),
                timeout,
            },
            None,
            limits.clone(),
        ));
        Arc::new(RcClient::new(
            http,
            platform.base_url(),
            auth,
            limits,
            timeout,
        ))
    }

    /// A platform, a roster fed by a detector, and the directory task running on them.
    struct Setup {
        platform: PlatformHandle,
        roster: Roster,
        detector: Detector,
        stop: crate::util::shutdown::StopSender,
        task: tokio::task::JoinHandle<()>,
    }

    async fn setup(options: PlatformOptions) -> Setup {
        let platform = Platform::start(options).await.expect("platform starts");
        let roster = Roster::new();
        let (stop, shutdown) = crate::util::shutdown::channel();
        let task = tokio::spawn(Directory::new(client(&platform), roster.clone()).run(shutdown));
        Setup {
            platform,
            roster,
            detector: Detector::default(),
            stop,
            task,
        }
    }

    impl Setup {
        fn play(&mut self, input: Input) {
            let session = match &input {
                Input::Notification { notification, .. } => notification.session_id.clone(),
                _ => unreachable!("only notifications are played"),
            };
            self.detector.apply(input);
            let id = ConferenceId::parse(session.as_str()).expect("a conference id");
            self.roster.sync(&self.detector, &[id]);
        }

        fn name_of(&self, session: &str, extension: &str) -> Option<String> {
            let id = ConferenceId::parse(session).expect("a conference id");
            let view = self.roster.conference(&id)?;
            view.participants
                .into_iter()
                .map(|p| p.identity)
                .find(|identity| identity.extension_id.as_deref() == Some(extension))
                .and_then(|identity| identity.name)
        }

        async fn wait_named(&self, session: &str, extension: &str) -> String {
            let deadline = Instant::now() + DEADLINE;
            loop {
                if let Some(name) = self.name_of(session, extension) {
                    return name;
                }
                assert!(Instant::now() < deadline, "{extension} never named");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }

        fn extension_requests(&self) -> Vec<String> {
            self.platform
                .requests()
                .into_iter()
                .filter(|r| r.path.starts_with("/restapi/v1.0/account/~/extension/"))
                .map(|r| r.path.rsplit('/').next().unwrap_or_default().to_owned())
                .collect()
        }

        async fn stop(self) {
            self.stop.stop();
            tokio::time::timeout(DEADLINE, self.task)
                .await
                .expect("the task ends on the graceful stop")
                .expect("the task does not panic");
        }
    }

    #[tokio::test]
    async fn only_unnamed_callers_with_an_extension_are_looked_up_once_and_caller_id_names_stay() {
        let mut setup = setup(
            PlatformOptions::new()
                .directory_entry("62288", "Dana Whitfield")
                .directory_entry("62299", "Directory Name")
                .directory_entry("62277", "Lee Park"),
        )
        .await;
        setup.play(conference(
            "s-one",
            vec![
                identity(None, "288", Some("62288")),
                identity(Some("Agent 99"), "299", Some("62299")),
                identity(None, "+14155550142", None),
            ],
        ));
        assert_eq!(setup.wait_named("s-one", "62288").await, "Dana Whitfield");
        // A second conference with the same extension, and one more unnamed caller: the new one
        // is read (after 62288 would have been, the queue being in order), the cached one not.
        setup.play(conference(
            "s-two",
            vec![
                identity(None, "288", Some("62288")),
                identity(None, "277", Some("62277")),
            ],
        ));
        assert_eq!(setup.wait_named("s-two", "62277").await, "Lee Park");
        assert_eq!(
            setup.name_of("s-two", "62288").as_deref(),
            Some("Dana Whitfield")
        );
        assert_eq!(
            setup.name_of("s-one", "62299").as_deref(),
            Some("Agent 99"),
            "caller ID is never overridden"
        );
        assert_eq!(
            setup.extension_requests(),
            vec!["62288".to_owned(), "62277".to_owned()],
            "no lookup for a named caller or a caller without an extension, none twice"
        );
        setup.stop().await;
    }

    #[tokio::test]
    async fn a_403_stops_the_lookups_for_the_rest_of_the_run_after_one_request() {
        let mut setup = setup(PlatformOptions::new().extensions_permitted(false)).await;
        setup.play(conference(
            "s-one",
            vec![
                identity(None, "288", Some("62288")),
                identity(None, "277", Some("62277")),
            ],
        ));
        let deadline = Instant::now() + DEADLINE;
        while setup.extension_requests().is_empty() {
            assert!(Instant::now() < deadline, "no lookup was made");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        setup.play(conference(
            "s-two",
            vec![identity(None, "266", Some("62266"))],
        ));
        // Nothing to wait for: the point is that nothing more happens.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(setup.extension_requests(), vec!["62288".to_owned()]);
        assert_eq!(setup.name_of("s-one", "62288"), None);
        setup.stop().await;
    }
}
