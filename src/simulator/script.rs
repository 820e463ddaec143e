//! [`ConferenceScript`]: records the notifications of one scripted conference.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use super::{CallerRef, LeaveSignal, Person, Scripted};
use crate::util::random::SplitMix64;

/// The webhook envelope with an empty `body.parties`.
const NOTIFICATION: &str = include_str!("templates/notification.json");
/// The host's leg of a plain two-party call (compare `seed/participant-added.json`).
const CALL_LEG: &str = include_str!("templates/call-leg.json");
/// The Host party of a conference session.
const CONFERENCE_HOST: &str = include_str!("templates/conference-host.json");
/// A merged caller's party in a conference session.
const CONFERENCE_PARTICIPANT: &str = include_str!("templates/conference-participant.json");
/// `status` of an original leg after the merge.
const STATUS_GONE_CONFERENCE: &str = include_str!("templates/status-gone-conference.json");

/// RFC 3339 with milliseconds and `Z`, as RingCentral writes `eventTime` and `timestamp`.
const WIRE_TIME: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// The first sequence number of every session: the captured calls all start at 2.
const FIRST_SEQUENCE: u64 = 2;

/// A scripted conference: call [`start`](Self::start), [`call_and_merge`](Self::call_and_merge),
/// [`hang_up`](Self::hang_up), [`end`](Self::end) and [`advance`](Self::advance) in the order
/// things happen, then read [`notifications`](Self::notifications).
///
/// Everything (ids, uuids, small realistic delays between related events) is derived from the
/// seed, so the same calls with the same seed give identical notifications. Each notification
/// carries only the party that changed, like RingCentral's.
///
/// The methods panic when the script makes no sense (merging after the end, hanging up a caller
/// twice, asking for the conference-side id of a caller never merged): scripts are test input.
#[derive(Debug, Clone)]
pub struct ConferenceScript {
    rng: Rng,
    used_uuids: HashSet<String>,
    host: Person,
    host_device_id: String,
    account_id: String,
    owner_id: String,
    subscription_id: String,
    server_id: String,
    base: OffsetDateTime,
    now_ms: u64,
    conference: Session,
    host_party: String,
    next_conference_party: u32,
    phase: Phase,
    callers: Vec<Caller>,
    original_disconnects_on_end: bool,
    /// The host is still on the conference (see [`ConferenceScript::host_leaves`]).
    host_present: bool,
    notifications: Vec<Scripted>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    NotStarted,
    Live,
    Ended,
}

#[derive(Debug, Clone)]
struct Session {
    id: String,
    legacy_id: String,
    origin: &'static str,
    next_sequence: u64,
}

#[derive(Debug, Clone)]
struct Caller {
    person: Person,
    original: Session,
    original_party: String,
    conference_party: Option<String>,
    /// Still on the call (the script has not hung them up or ended the conference).
    present: bool,
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Conference,
    Original(usize),
}

impl ConferenceScript {
    /// A script for a conference hosted by `host`, whose clock starts at `base` (truncated to
    /// milliseconds). Nothing is emitted yet.
    pub fn new(seed: u64, mut host: Person, base: OffsetDateTime) -> Self {
        let mut rng = Rng(SplitMix64::new(seed));
        let account_id = rng.digits(9);
        let owner_id = rng.digits(11);
        let subscription_id = rng.subscription_id();
        let server_id = format!("10.13.{}.{}.TAM", rng.below(256), 1 + rng.below(254));
        if host.extension_id.is_none() {
            host.extension_id = Some(rng.digits(11));
        }
        let host_device_id = rng.digits(12);
        let conference_hex = rng.hex32();
        let host_party = format!("p-{conference_hex}-1");
        let conference = Session {
            id: format!("s-{conference_hex}"),
            legacy_id: "0".to_owned(),
            origin: "Conference",
            next_sequence: FIRST_SEQUENCE,
        };
        let base = base
            .to_offset(time::UtcOffset::UTC)
            .replace_millisecond(base.millisecond())
            .expect("a millisecond taken from a valid time is valid");
        Self {
            rng,
            used_uuids: HashSet::new(),
            host,
            host_device_id,
            account_id,
            owner_id,
            subscription_id,
            server_id,
            base,
            now_ms: 0,
            conference,
            host_party,
            next_conference_party: 2,
            phase: Phase::NotStarted,
            callers: Vec::new(),
            original_disconnects_on_end: true,
            host_present: true,
            notifications: Vec::new(),
        }
    }

    /// The conference session's `telephonySessionId`.
    pub fn conference_id(&self) -> &str {
        &self.conference.id
    }

    /// The id of the conference's Host party.
    pub fn host_party_id(&self) -> &str {
        &self.host_party
    }

    /// The host, with the extension id the payloads carry.
    pub fn host(&self) -> &Person {
        &self.host
    }

    /// The account id the payloads carry.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// The script clock now.
    pub fn now(&self) -> OffsetDateTime {
        self.base + Duration::from_millis(self.now_ms)
    }

    /// Moves the script clock forward (whole milliseconds).
    pub fn advance(&mut self, by: Duration) {
        self.now_ms += u64::try_from(by.as_millis()).expect("script durations fit in u64 ms");
    }

    /// Whether [`end`](Self::end) also sends `Disconnected` for the original (pre-merge) parties
    /// of the callers still present. On by default.
    pub fn set_original_disconnects_on_end(&mut self, on: bool) {
        self.original_disconnects_on_end = on;
    }

    /// Starts the conference: the conference session appears with its Host party `Answered`.
    /// Implied by the first merge if not called.
    ///
    /// # Panics
    /// If the conference was already started.
    pub fn start(&mut self) {
        assert_eq!(
            self.phase,
            Phase::NotStarted,
            "the conference was already started"
        );
        self.phase = Phase::Live;
        let party = self.conference_host_party("Answered");
        self.emit(Target::Conference, party);
    }

    /// A plain two-party call from the host to `caller`: the host's leg goes `Setup`,
    /// `Proceeding`, `Answered` (a few seconds of ringing). The call is not merged; see
    /// [`merge`](Self::merge).
    pub fn call(&mut self, caller: Person) -> CallerRef {
        let hex = self.rng.hex32();
        let index = self.callers.len();
        self.callers.push(Caller {
            person: caller,
            original: Session {
                id: format!("s-{hex}"),
                legacy_id: self.rng.digits(13),
                origin: "Call",
                next_sequence: FIRST_SEQUENCE,
            },
            original_party: format!("p-{hex}-1"),
            conference_party: None,
            present: true,
        });
        let setup = self.call_leg(index, "Setup");
        self.emit(Target::Original(index), setup);
        self.step(250, 700);
        let proceeding = self.call_leg(index, "Proceeding");
        self.emit(Target::Original(index), proceeding);
        self.step(3_000, 9_000);
        let answered = self.call_leg(index, "Answered");
        self.emit(Target::Original(index), answered);
        CallerRef(index)
    }

    /// Merges an answered call into the conference after a short talk: the original host leg
    /// goes `Gone`/`Conference` with `peerId` naming the new conference-side party, then that
    /// `Participant` party appears `Answered` on the conference session.
    ///
    /// # Panics
    /// If the conference has ended, or the caller was merged before or has hung up.
    pub fn merge(&mut self, caller: CallerRef) {
        if self.phase == Phase::NotStarted {
            self.start();
        }
        assert_eq!(
            self.phase,
            Phase::Live,
            "cannot merge into an ended conference"
        );
        let index = caller.0;
        let entry = &self.callers[index];
        assert!(entry.present, "cannot merge a caller who hung up");
        assert!(entry.conference_party.is_none(), "caller already merged");
        let participant = format!(
            "{}-{}",
            self.host_party_prefix(),
            self.next_conference_party
        );
        self.next_conference_party += 1;
        self.callers[index].conference_party = Some(participant);

        self.step(6_000, 20_000);
        let gone = self.gone_leg(index);
        self.emit(Target::Original(index), gone);
        self.step(30, 120);
        let joined = self.participant_party(index, "Answered");
        self.emit(Target::Conference, joined);
    }

    /// [`call`](Self::call) then [`merge`](Self::merge).
    pub fn call_and_merge(&mut self, caller: Person) -> CallerRef {
        let caller = self.call(caller);
        self.merge(caller);
        caller
    }

    /// A caller leg that never reaches the conference: [`call`](Self::call), `talk` on the
    /// clock, then the host leg goes `Disconnected`.
    pub fn two_party_call(&mut self, caller: Person, talk: Duration) -> CallerRef {
        let caller = self.call(caller);
        self.advance(talk);
        self.hang_up(caller, LeaveSignal::OriginalOnly);
        caller
    }

    /// The caller hangs up; `signal` says which notifications RingCentral sends for it. For a
    /// merged caller: the original party's `Disconnected` then the conference-side party's. For
    /// a caller never merged there is only the original party, sent unless the signal is
    /// `ConferenceOnly` or `Silent`. Either way the caller is gone: [`end`](Self::end) sends
    /// nothing more for them.
    ///
    /// # Panics
    /// If the caller already hung up or the conference ended with them in it.
    pub fn hang_up(&mut self, caller: CallerRef, signal: LeaveSignal) {
        let index = caller.0;
        assert!(self.callers[index].present, "caller already hung up");
        self.callers[index].present = false;
        let merged = self.callers[index].conference_party.is_some();
        if signal.signals_original() {
            let party = self.call_leg(index, "Disconnected");
            self.emit(Target::Original(index), party);
        }
        if merged && signal.signals_conference() {
            if signal.signals_original() {
                self.step(20, 80);
            }
            let party = self.participant_party(index, "Disconnected");
            self.emit(Target::Conference, party);
        }
    }

    /// The platform's answer to the host removing a caller
    /// (`DELETE …/sessions/{conference_id}/parties/{participant_id}`): the conference-side party
    /// goes `Disconnected`, then the original party. Emits two notifications.
    ///
    /// # Panics
    /// If the caller was never merged or is no longer present.
    pub fn kick(&mut self, caller: CallerRef) {
        let index = caller.0;
        assert!(
            self.callers[index].conference_party.is_some(),
            "caller was never merged"
        );
        assert!(self.callers[index].present, "caller already left");
        self.callers[index].present = false;
        let party = self.participant_party(index, "Disconnected");
        self.emit(Target::Conference, party);
        self.step(20, 80);
        let party = self.call_leg(index, "Disconnected");
        self.emit(Target::Original(index), party);
    }

    /// The host ends the conference: the Host party goes `Disconnected`, then every
    /// conference-side party still present, then (unless turned off with
    /// [`set_original_disconnects_on_end`](Self::set_original_disconnects_on_end)) the original
    /// parties of those callers. Plain calls that were never merged are left alone.
    ///
    /// # Panics
    /// If the conference is not live.
    pub fn end(&mut self) {
        assert_eq!(self.phase, Phase::Live, "only a live conference can end");
        self.phase = Phase::Ended;
        let remaining: Vec<usize> = (0..self.callers.len())
            .filter(|&i| self.callers[i].present && self.callers[i].conference_party.is_some())
            .collect();
        // The host ends it for everyone: the host's leg goes first, then the bridge drops the
        // callers still on it (`docs/ringcentral.md` §10 leaves the exact order unconfirmed).
        if self.host_present {
            self.host_present = false;
            let host = self.conference_host_party("Disconnected");
            self.emit(Target::Conference, host);
        }
        for &index in &remaining {
            self.step(10, 60);
            let party = self.participant_party(index, "Disconnected");
            self.emit(Target::Conference, party);
        }
        for &index in &remaining {
            self.callers[index].present = false;
            if self.original_disconnects_on_end {
                self.step(10, 60);
                let party = self.call_leg(index, "Disconnected");
                self.emit(Target::Original(index), party);
            }
        }
    }

    /// The host leaves a live conference that stays up for the callers
    /// (`keepConferenceAlive`): the Host party goes `Disconnected`. A later
    /// [`end`](Self::end) sends nothing more for the host.
    ///
    /// # Panics
    /// If the conference is not live or the host already left.
    pub fn host_leaves(&mut self) {
        assert_eq!(self.phase, Phase::Live, "only a live conference has a host");
        assert!(self.host_present, "the host already left");
        self.host_present = false;
        let host = self.conference_host_party("Disconnected");
        self.emit(Target::Conference, host);
    }

    /// Whether the conference has started and not ended.
    pub fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }

    /// Whether the host is on a live conference.
    pub fn host_present(&self) -> bool {
        self.is_live() && self.host_present
    }

    /// Every caller added so far, in the order they were called.
    pub fn callers(&self) -> impl Iterator<Item = CallerRef> + '_ {
        (0..self.callers.len()).map(CallerRef)
    }

    /// Whether the caller is still on their call (not hung up, kicked or ended).
    pub fn is_present(&self, caller: CallerRef) -> bool {
        self.callers[caller.0].present
    }

    /// The caller's conference-side party id, if they were merged.
    pub fn conference_party(&self, caller: CallerRef) -> Option<&str> {
        self.callers[caller.0].conference_party.as_deref()
    }

    /// The caller as scripted.
    pub fn caller(&self, caller: CallerRef) -> &Person {
        &self.callers[caller.0].person
    }

    /// The caller's conference-side party id (the one ringside keys by and a kick deletes).
    ///
    /// # Panics
    /// If the caller was never merged.
    pub fn participant_id(&self, caller: CallerRef) -> &str {
        self.callers[caller.0]
            .conference_party
            .as_deref()
            .expect("caller was never merged")
    }

    /// `(telephonySessionId, party id)` of the caller's original two-party call leg.
    pub fn original_ids(&self, caller: CallerRef) -> (&str, &str) {
        let entry = &self.callers[caller.0];
        (&entry.original.id, &entry.original_party)
    }

    /// Everything scripted so far, in the order it happened.
    pub fn notifications(&self) -> &[Scripted] {
        &self.notifications
    }

    /// Takes the notifications out of the script.
    pub fn into_notifications(self) -> Vec<Scripted> {
        self.notifications
    }

    fn host_party_prefix(&self) -> &str {
        self.host_party
            .strip_suffix("-1")
            .expect("host party ids end in -1")
    }

    /// A small random delay between related events, in milliseconds.
    fn step(&mut self, low_ms: u64, high_ms: u64) {
        self.now_ms += low_ms + self.rng.below(high_ms - low_ms + 1);
    }

    fn session_mut(&mut self, target: Target) -> &mut Session {
        match target {
            Target::Conference => &mut self.conference,
            Target::Original(index) => &mut self.callers[index].original,
        }
    }

    /// Wraps one changed party in a notification of the target session, at the clock's time.
    fn emit(&mut self, target: Target, party: Value) {
        let session = self.session_mut(target);
        let sequence = session.next_sequence;
        session.next_sequence += 1;
        let (session_id, legacy_id, origin) = (
            session.id.clone(),
            session.legacy_id.clone(),
            session.origin,
        );

        let at = self.now();
        let sent = at + Duration::from_millis(40 + self.rng.below(300));
        let uuid = loop {
            let candidate =
                (1_000_000_000_000_000_000 + self.rng.below(9_000_000_000_000_000_000)).to_string();
            if self.used_uuids.insert(candidate.clone()) {
                break candidate;
            }
        };
        let event = format!(
            "/restapi/v1.0/account/{}/extension/{}/telephony/sessions",
            self.account_id,
            self.host_extension()
        );

        let mut body = template(NOTIFICATION);
        put(&mut body, "/uuid", uuid);
        put(&mut body, "/event", event);
        put(&mut body, "/timestamp", wire_time(sent));
        put(&mut body, "/subscriptionId", self.subscription_id.clone());
        put(&mut body, "/ownerId", self.owner_id.clone());
        put(&mut body, "/body/sequence", sequence);
        put(&mut body, "/body/sessionId", legacy_id);
        put(&mut body, "/body/telephonySessionId", session_id.clone());
        put(&mut body, "/body/serverId", self.server_id.clone());
        put(&mut body, "/body/eventTime", wire_time(at));
        put(&mut body, "/body/parties", Value::Array(vec![party]));
        put(&mut body, "/body/origin/type", origin);
        self.notifications.push(Scripted {
            at,
            session_id,
            sequence,
            body,
        });
    }

    fn host_extension(&self) -> &str {
        self.host
            .extension_id
            .as_deref()
            .expect("the host always has an extension id")
    }

    /// Fills `from` (at `pointer`) with the host's endpoint.
    fn fill_host_endpoint(&self, party: &mut Value, pointer: &str) {
        put(
            party,
            &format!("{pointer}/phoneNumber"),
            self.host.number.clone(),
        );
        put_or_drop(party, &format!("{pointer}/name"), Some(&self.host.name));
        put(
            party,
            &format!("{pointer}/extensionId"),
            self.host_extension().to_owned(),
        );
        put(
            party,
            &format!("{pointer}/deviceId"),
            self.host_device_id.clone(),
        );
    }

    /// The host's leg of the caller's original call, with a plain status code.
    fn call_leg(&self, index: usize, code: &str) -> Value {
        let caller = &self.callers[index];
        let mut party = template(CALL_LEG);
        put(&mut party, "/accountId", self.account_id.clone());
        put(&mut party, "/extensionId", self.host_extension().to_owned());
        put(&mut party, "/id", caller.original_party.clone());
        put(&mut party, "/to/phoneNumber", caller.person.number.clone());
        put_or_drop(&mut party, "/to/name", Some(&caller.person.name));
        put_or_drop(
            &mut party,
            "/to/extensionId",
            caller.person.extension_id.as_ref(),
        );
        self.fill_host_endpoint(&mut party, "/from");
        put(&mut party, "/status/code", code);
        party
    }

    /// The original leg after the merge: `Gone`/`Conference`, peer = the conference-side party.
    fn gone_leg(&self, index: usize) -> Value {
        let mut party = self.call_leg(index, "Gone");
        let mut status = template(STATUS_GONE_CONFERENCE);
        put(
            &mut status,
            "/peerId/telephonySessionId",
            self.conference.id.clone(),
        );
        put(
            &mut status,
            "/peerId/partyId",
            self.participant_id(CallerRef(index)).to_owned(),
        );
        put(&mut party, "/status", status);
        party
    }

    fn conference_host_party(&self, code: &str) -> Value {
        let mut party = template(CONFERENCE_HOST);
        put(&mut party, "/accountId", self.account_id.clone());
        put(&mut party, "/extensionId", self.host_extension().to_owned());
        put(&mut party, "/id", self.host_party.clone());
        self.fill_host_endpoint(&mut party, "/from");
        put(&mut party, "/status/code", code);
        party
    }

    /// The caller's conference-side party. RingCentral puts the host's number in `from` of
    /// merged callers (`js-widgets/conference-session.json`). While connected, `peerId` points
    /// back at the original party; a `Disconnected` party carries no `peerId`.
    fn participant_party(&self, index: usize, code: &str) -> Value {
        let caller = &self.callers[index];
        let mut party = template(CONFERENCE_PARTICIPANT);
        put(&mut party, "/accountId", self.account_id.clone());
        put(
            &mut party,
            "/id",
            self.participant_id(CallerRef(index)).to_owned(),
        );
        self.fill_host_endpoint(&mut party, "/from");
        put(&mut party, "/status/code", code);
        if code == "Disconnected" {
            drop_field(&mut party, "/status/peerId");
        } else {
            put(
                &mut party,
                "/status/peerId/sessionId",
                self.conference.id.clone(),
            );
            put(
                &mut party,
                "/status/peerId/partyId",
                caller.original_party.clone(),
            );
        }
        party
    }
}

fn template(text: &str) -> Value {
    serde_json::from_str(text).expect("simulator templates are valid JSON")
}

/// Replaces the value at `pointer`, which the template must already have.
fn put(value: &mut Value, pointer: &str, new: impl Into<Value>) {
    let slot = value
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("simulator template has no field {pointer}"));
    *slot = new.into();
}

/// Fills a string field, or removes it when there is nothing (or only "") to put there.
fn put_or_drop(value: &mut Value, pointer: &str, new: Option<&String>) {
    match new.filter(|text| !text.is_empty()) {
        Some(text) => put(value, pointer, text.clone()),
        None => drop_field(value, pointer),
    }
}

fn drop_field(value: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointers start with /");
    let removed = value
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .and_then(|object| object.remove(key));
    assert!(
        removed.is_some(),
        "simulator template has no field {pointer}"
    );
}

fn wire_time(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(WIRE_TIME)
        .expect("script times format")
}

/// The seeded generator for made-up ids and delays.
#[derive(Debug, Clone)]
struct Rng(SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform enough in `0..bound` for ids and delays (`bound` > 0).
    fn below(&mut self, bound: u64) -> u64 {
        self.0.below(bound)
    }

    fn hex32(&mut self) -> String {
        format!("{:016x}{:016x}", self.next(), self.next())
    }

    /// `count` decimal digits, the first not zero.
    fn digits(&mut self, count: usize) -> String {
        let mut text = (1 + self.below(9)).to_string();
        for _ in 1..count {
            text.push(char::from(
                b'0' + u8::try_from(self.below(10)).expect("a digit"),
            ));
        }
        text
    }

    fn subscription_id(&mut self) -> String {
        let hex = self.hex32();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }
}
