//! A deterministic synthetic day of a call centre, as detector inputs: what `benches/detector.rs`
//! replays and `benches/render.rs` renders. Built from ringside's public `Input` types only, the
//! way the webhook (`SessionUpdate::from_notification`) and the reconciler (`Input::Snapshot`,
//! `Input::SessionGone`) would hand them over, plus the pipeline's `Input::Tick` every
//! `TICK_INTERVAL`.
//!
//! Each agent works the day as a sequence of activities:
//!
//! - **plain calls** (most): an inbound or outbound two-party call, `Setup` → `Proceeding` →
//!   `Answered` (sometimes `Hold` and back) → `Disconnected`; some internal calls carry both
//!   parties. They must produce no event at all.
//! - **transfers**: a plain call whose agent party goes `Gone` with `AttendedTransfer` or
//!   `BlindTransfer` and a `peerId` into a second agent's call, which then runs as a plain call.
//! - **conferences**: the agent opens a conference session (host party, `conferenceRole = Host`),
//!   calls 2 to 7 callers one by one and merges each (`Gone`/`Conference` with a `peerId`, then the
//!   conference side's `Participant` party); some callers hang up before the end; the conference
//!   ends with every party `Disconnected`, or, for one in ten, only the reconciler's
//!   `SessionGone` (the session GET answered 404). While live, the conference is read back every
//!   20 s (`Input::Snapshot`, the reconciler's default interval).
//!
//! Delivery is then made untidy the way RingCentral's is: about 3 % of neighbouring inputs swap
//! places (sessions are not ordered against each other, and a session's own events can arrive
//! out of order), and about 2 % of notifications are delivered a second time a little later.

use ringside::conference::input::{PartyUpdate, Peer};
use ringside::conference::{
    ConferenceId, Identity, Input, PartyId, SessionId, SessionUpdate, Timestamp,
};
use ringside::ringcentral::wire::{
    ConferenceRole, Direction, OriginType, StatusCode, StatusReason,
};
use std::collections::BTreeMap;

/// 2024-02-27 09:00:00 UTC: the start of the day.
pub const DAY_START_MS: i64 = 1_709_024_400_000;
/// The reconciler's default polling interval (`DetectorConfig::default()`).
const SNAPSHOT_EVERY_MS: i64 = 20_000;
/// The pipeline's tick (`ringside::pipeline::TICK_INTERVAL`).
const TICK_EVERY_MS: i64 = 30_000;

/// The shape of the day.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub agents: usize,
    pub hours: i64,
    pub seed: u64,
}

/// A 1,000-agent call centre's 8-hour day.
pub const CALL_CENTRE_DAY: Shape = Shape {
    agents: 1_000,
    hours: 8,
    seed: 0x5eed_da7a,
};

/// What the day should make the detector say (before delivery was made untidy).
#[derive(Debug, Default, Clone, Copy)]
pub struct Expected {
    pub conferences: usize,
    /// Callers merged into a conference: each joins once.
    pub joins: usize,
    pub plain_calls: usize,
    pub transfers: usize,
    pub snapshots: usize,
    pub ticks: usize,
    pub duplicates: usize,
    pub swaps: usize,
}

/// The day's inputs, in delivery order.
pub struct Day {
    pub inputs: Vec<Input>,
    pub expected: Expected,
}

/// splitmix64: a small deterministic generator, so the day is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    fn between(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1) as u64) as i64
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// True with probability `permille` / 1000.
    fn chance_permille(&mut self, permille: u64) -> bool {
        self.next() % 1000 < permille
    }
}

fn agent(index: usize) -> Identity {
    Identity {
        name: Some(format!("Agent {index:04}")),
        phone_number: Some(format!("+1650555{index:04}")),
        extension_id: Some(format!("{}", 62_000_000 + index)),
    }
}

fn customer(rng: &mut Rng) -> Identity {
    let number = rng.between(2_000_000, 9_999_999);
    Identity {
        // Half the callers come with a caller-id name.
        name: rng.chance(50).then(|| format!("Customer {number}")),
        phone_number: Some(format!("+1415{number}")),
        extension_id: None,
    }
}

fn party_id(value: String) -> PartyId {
    PartyId::parse(&value).expect("a generated party id is valid")
}

fn session_id(value: &str) -> SessionId {
    SessionId::parse(value).expect("a generated session id is valid")
}

fn party(id: &PartyId, code: StatusCode) -> PartyUpdate {
    PartyUpdate {
        id: id.clone(),
        direction: None,
        from: Identity::default(),
        to: Identity::default(),
        to_conference: false,
        code: Some(code),
        reason: None,
        peer: None,
        role: None,
        muted: Some(false),
    }
}

/// Inputs with their delivery time; sorted once at the end.
struct Timeline {
    entries: Vec<(i64, u64, Input)>,
    /// The next `sequence` of each session.
    sequences: BTreeMap<String, u64>,
    order: u64,
}

impl Timeline {
    fn push(&mut self, at: i64, input: Input) {
        self.order += 1;
        self.entries.push((at, self.order, input));
    }

    /// A notification of `session` at `at` (received ~40 ms after `eventTime`).
    fn notify(&mut self, at: i64, session: &str, origin: OriginType, parties: Vec<PartyUpdate>) {
        let sequence = self.sequences.entry(session.to_owned()).or_insert(0);
        *sequence += 1;
        let update = SessionUpdate {
            session_id: session_id(session),
            sequence: Some(*sequence),
            event_time: Some(Timestamp(at - 40)),
            origin: Some(origin),
            parties,
        };
        self.push(
            at,
            Input::Notification {
                received_at: Timestamp(at),
                notification: update,
            },
        );
    }
}

/// A two-party call of `agent_identity` with `remote`; the agent's party is `p-…-1`, and an
/// internal call also carries the other side's party `p-…-2`. Ends at `end` with `Disconnected`,
/// or, when `transfer_to` is given, with the agent's party `Gone` into that session's party.
#[allow(clippy::too_many_arguments)]
fn plain_call(
    timeline: &mut Timeline,
    rng: &mut Rng,
    session: &str,
    agent_identity: &Identity,
    remote: &Identity,
    start: i64,
    end: i64,
    transfer_to: Option<(&str, &PartyId)>,
) {
    let inbound = rng.chance(60);
    let internal = rng.chance(10);
    let own = party_id(format!("p-{session}-1"));
    let other = party_id(format!("p-{session}-2"));
    let with_sides = |code: StatusCode| {
        let mut update = party(&own, code);
        if inbound {
            update.direction = Some(Direction::Inbound);
            update.from = remote.clone();
            update.to = agent_identity.clone();
        } else {
            update.direction = Some(Direction::Outbound);
            update.from = agent_identity.clone();
            update.to = remote.clone();
        }
        update
    };
    let parties = |code: StatusCode| {
        let mut list = vec![with_sides(code.clone())];
        if internal {
            let mut far = party(&other, code);
            far.direction = Some(if inbound {
                Direction::Outbound
            } else {
                Direction::Inbound
            });
            list.push(far);
        }
        list
    };
    timeline.notify(start, session, OriginType::Call, parties(StatusCode::Setup));
    timeline.notify(
        start + 300,
        session,
        OriginType::Call,
        parties(StatusCode::Proceeding),
    );
    let answered = start + rng.between(3_000, 20_000);
    timeline.notify(
        answered,
        session,
        OriginType::Call,
        parties(StatusCode::Answered),
    );
    if rng.chance(20) && end - answered > 40_000 {
        let hold = answered + (end - answered) / 3;
        timeline.notify(hold, session, OriginType::Call, parties(StatusCode::Hold));
        timeline.notify(
            hold + 15_000,
            session,
            OriginType::Call,
            parties(StatusCode::Answered),
        );
    }
    match transfer_to {
        None => timeline.notify(
            end,
            session,
            OriginType::Call,
            parties(StatusCode::Disconnected),
        ),
        Some((to_session, to_party)) => {
            let mut gone = with_sides(StatusCode::Gone);
            gone.reason = Some(if rng.chance(50) {
                StatusReason::AttendedTransfer
            } else {
                StatusReason::BlindTransfer
            });
            gone.peer = Some(Peer {
                telephony_session_id: Some(session_id(to_session)),
                party_id: Some(to_party.clone()),
            });
            timeline.notify(end, session, OriginType::Call, vec![gone]);
        }
    }
}

/// One caller of a conference, as the generator planned it.
struct Caller {
    original_session: String,
    original_party: PartyId,
    conference_party: PartyId,
    joined: i64,
    /// When they hang up before the end, if they do.
    leaves: Option<i64>,
}

/// A conference hosted by `host`, from `start` to `end`: see the module doc.
fn conference(
    timeline: &mut Timeline,
    rng: &mut Rng,
    expected: &mut Expected,
    name: &str,
    host: &Identity,
    start: i64,
    end: i64,
) {
    let conference_session = format!("s-conf-{name}");
    let host_party = party_id(format!("p-conf-{name}-1"));
    let host_update = |code: StatusCode| {
        let mut update = party(&host_party, code);
        update.direction = Some(Direction::Outbound);
        update.from = host.clone();
        update.to_conference = true;
        update.role = Some(ConferenceRole::Host);
        update
    };
    timeline.notify(
        start,
        &conference_session,
        OriginType::Conference,
        vec![host_update(StatusCode::Answered)],
    );
    let count = rng.between(2, 7) as usize;
    let mut callers = Vec::with_capacity(count);
    let mut at = start + 5_000;
    for index in 0..count {
        let original_session = format!("s-conf-{name}-call-{index}");
        let original_party = party_id(format!("p-conf-{name}-call-{index}-1"));
        let conference_party = party_id(format!("p-conf-{name}-{}", index + 2));
        let remote = customer(rng);
        let outbound = |code: StatusCode| {
            let mut update = party(&original_party, code);
            update.direction = Some(Direction::Outbound);
            update.from = host.clone();
            update.to = remote.clone();
            update
        };
        // The host calls the caller on a call of its own, then merges it.
        timeline.notify(
            at,
            &original_session,
            OriginType::Call,
            vec![outbound(StatusCode::Setup)],
        );
        timeline.notify(
            at + 300,
            &original_session,
            OriginType::Call,
            vec![outbound(StatusCode::Proceeding)],
        );
        let answered = at + rng.between(3_000, 12_000);
        timeline.notify(
            answered,
            &original_session,
            OriginType::Call,
            vec![outbound(StatusCode::Answered)],
        );
        let merged = answered + rng.between(10_000, 60_000);
        let mut gone = outbound(StatusCode::Gone);
        gone.reason = Some(StatusReason::Conference);
        gone.peer = Some(Peer {
            telephony_session_id: Some(session_id(&conference_session)),
            party_id: Some(conference_party.clone()),
        });
        timeline.notify(merged, &original_session, OriginType::Call, vec![gone]);
        timeline.notify(
            merged + 200,
            &conference_session,
            OriginType::Conference,
            vec![conference_side(
                &conference_party,
                &original_party,
                host,
                StatusCode::Answered,
            )],
        );
        let leaves = (rng.chance(35) && end - merged > 90_000)
            .then(|| merged + rng.between(60_000, end - merged - 20_000));
        callers.push(Caller {
            original_session,
            original_party,
            conference_party,
            joined: merged,
            leaves,
        });
        at = merged + rng.between(5_000, 40_000);
    }
    expected.conferences += 1;
    expected.joins += count;
    let end = end.max(at + 30_000);
    for caller in &callers {
        if let Some(left) = caller.leaves {
            timeline.notify(
                left,
                &conference_session,
                OriginType::Conference,
                vec![conference_side(
                    &caller.conference_party,
                    &caller.original_party,
                    host,
                    StatusCode::Disconnected,
                )],
            );
            timeline.notify(
                left + 150,
                &caller.original_session,
                OriginType::Call,
                vec![party(&caller.original_party, StatusCode::Disconnected)],
            );
        }
    }
    // The reconciler reads the live conference back every interval.
    let mut snapshot_at = start + SNAPSHOT_EVERY_MS;
    while snapshot_at < end {
        let mut parties = vec![host_update(StatusCode::Answered)];
        for caller in &callers {
            if caller.joined < snapshot_at && caller.leaves.is_none_or(|left| left > snapshot_at) {
                parties.push(conference_side(
                    &caller.conference_party,
                    &caller.original_party,
                    host,
                    StatusCode::Answered,
                ));
            }
        }
        timeline.push(
            snapshot_at,
            Input::Snapshot {
                requested_at: Timestamp(snapshot_at),
                session: SessionUpdate {
                    session_id: session_id(&conference_session),
                    sequence: None,
                    event_time: None,
                    origin: Some(OriginType::Conference),
                    parties,
                },
            },
        );
        expected.snapshots += 1;
        snapshot_at += SNAPSHOT_EVERY_MS;
    }
    let remaining: Vec<&Caller> = callers.iter().filter(|c| c.leaves.is_none()).collect();
    if rng.chance(10) {
        // Only the reconciler learns that it ended: the callers' own calls end, then the
        // session GET answers 404.
        for caller in &remaining {
            timeline.notify(
                end,
                &caller.original_session,
                OriginType::Call,
                vec![party(&caller.original_party, StatusCode::Disconnected)],
            );
        }
        timeline.push(
            end + 5_000,
            Input::SessionGone {
                at: Timestamp(end + 5_000),
                conference_id: ConferenceId::parse(&conference_session).expect("valid"),
            },
        );
    } else {
        let mut parties = vec![host_update(StatusCode::Disconnected)];
        parties.extend(remaining.iter().map(|caller| {
            conference_side(
                &caller.conference_party,
                &caller.original_party,
                host,
                StatusCode::Disconnected,
            )
        }));
        timeline.notify(end, &conference_session, OriginType::Conference, parties);
        for caller in &remaining {
            timeline.notify(
                end + 300,
                &caller.original_session,
                OriginType::Call,
                vec![party(&caller.original_party, StatusCode::Disconnected)],
            );
        }
    }
}

/// A conference-side `Participant` party; RingCentral puts the host's leg in `from`.
fn conference_side(
    id: &PartyId,
    original: &PartyId,
    host: &Identity,
    code: StatusCode,
) -> PartyUpdate {
    let mut update = party(id, code);
    update.direction = Some(Direction::Inbound);
    update.from = host.clone();
    update.to_conference = true;
    update.role = Some(ConferenceRole::Participant);
    update.peer = Some(Peer {
        telephony_session_id: None,
        party_id: Some(original.clone()),
    });
    update
}

impl Day {
    pub fn generate(shape: Shape) -> Day {
        let mut rng = Rng(shape.seed);
        let mut timeline = Timeline {
            entries: Vec::new(),
            sequences: BTreeMap::new(),
            order: 0,
        };
        let mut expected = Expected::default();
        let day_end = DAY_START_MS + shape.hours * 3_600_000;
        let mut calls = 0u64;
        for index in 0..shape.agents {
            let me = agent(index);
            // Agents log in over the first quarter hour.
            let mut at = DAY_START_MS + rng.between(0, 900_000);
            while at < day_end - 1_200_000 {
                calls += 1;
                let roll = rng.next() % 100;
                if roll < 5 {
                    let length = rng.between(300_000, 1_200_000);
                    conference(
                        &mut timeline,
                        &mut rng,
                        &mut expected,
                        &format!("{calls:06}"),
                        &me,
                        at,
                        at + length,
                    );
                    at += length + 60_000;
                } else if roll < 13 {
                    // A transfer to another agent, who takes the caller on a call of their own.
                    let remote = customer(&mut rng);
                    let length = rng.between(60_000, 300_000);
                    let second = format!("s-call-{calls:06}-t");
                    let second_party = party_id(format!("p-{second}-1"));
                    let colleague =
                        agent((index + 1 + (rng.next() % 999) as usize) % shape.agents.max(1));
                    plain_call(
                        &mut timeline,
                        &mut rng,
                        &format!("s-call-{calls:06}"),
                        &me,
                        &remote,
                        at,
                        at + length,
                        Some((&second, &second_party)),
                    );
                    let after = rng.between(60_000, 600_000);
                    plain_call(
                        &mut timeline,
                        &mut rng,
                        &second,
                        &colleague,
                        &remote,
                        at + length + 500,
                        at + length + after,
                        None,
                    );
                    expected.transfers += 1;
                    at += length + rng.between(20_000, 90_000);
                } else {
                    let remote = customer(&mut rng);
                    let length = rng.between(45_000, 600_000);
                    plain_call(
                        &mut timeline,
                        &mut rng,
                        &format!("s-call-{calls:06}"),
                        &me,
                        &remote,
                        at,
                        at + length,
                        None,
                    );
                    expected.plain_calls += 1;
                    at += length + rng.between(20_000, 120_000);
                }
            }
        }
        let mut tick = DAY_START_MS + TICK_EVERY_MS;
        while tick <= day_end + 3_600_000 {
            timeline.push(
                tick,
                Input::Tick {
                    now: Timestamp(tick),
                },
            );
            expected.ticks += 1;
            tick += TICK_EVERY_MS;
        }
        timeline.entries.sort_by_key(|(at, order, _)| (*at, *order));
        let mut inputs: Vec<Input> = Vec::with_capacity(timeline.entries.len() * 103 / 100);
        let mut later: Vec<(usize, Input)> = Vec::new();
        for (_, _, input) in timeline.entries {
            if matches!(input, Input::Notification { .. }) && rng.chance(2) {
                let delay = inputs.len() + rng.between(1, 40) as usize;
                later.push((delay, input.clone()));
                expected.duplicates += 1;
            }
            inputs.push(input);
            let due = inputs.len();
            later.retain(|(at, duplicate)| {
                if *at <= due {
                    inputs.push(duplicate.clone());
                    false
                } else {
                    true
                }
            });
        }
        inputs.extend(later.into_iter().map(|(_, duplicate)| duplicate));
        // Neighbours out of order; ticks stay where the clock put them.
        let mut index = 0;
        while index + 1 < inputs.len() {
            let movable = |input: &Input| !matches!(input, Input::Tick { .. });
            if rng.chance_permille(30) && movable(&inputs[index]) && movable(&inputs[index + 1]) {
                inputs.swap(index, index + 1);
                expected.swaps += 1;
                index += 2;
            } else {
                index += 1;
            }
        }
        Day { inputs, expected }
    }
}
