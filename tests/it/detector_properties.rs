//! Properties of the detector over generated multi-caller conference scenarios.
//!
//! A scenario is a script of telephony-session notifications the way RingCentral sends them for
//! server-side conferences: 1–3 conferences, each with a host and 1–6 callers merged in from their
//! own calls, callers leaving in one of four ways (or staying), conferences ending (or not), all
//! interleaved with plain two-party calls and the odd attended transfer. The scenario computes the
//! events it should produce *from the script* (see [`expected`]); the detector is never consulted
//! for that.
//!
//! Properties:
//! - **completeness**: the in-order run yields exactly the scripted events;
//! - **robustness**: any permutation plus duplicates never yields a leave without a join, an event
//!   twice, a join after a leave, anything after an end, anything for plain calls or transfers,
//!   and ends on the in-order run's final roster;
//! - **serialization**: a `serde_json` round trip at any point changes nothing;
//! - **duplicates**: in-order with repeated inputs yields exactly the scripted events.
//!
//! Case counts follow `PROPTEST_CASES` (proptest's default, 256, when unset), so a plain
//! `cargo test` stays quick: completeness and robustness run that many cases, duplicates three
//! quarters of it, serialization half. The full run (what `.ci/run` runs after `cargo test`) is
//! 8,000 (and 6,000 and 4,000):
//!
//! ```sh
//! PROPTEST_CASES=8000 cargo test --test it detector_properties::
//! ```

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use ringside::conference::input::{PartyUpdate, Peer};
use ringside::conference::{
    ConferenceEvent, Detector, DetectorConfig, EventKind, Identity, Input, LeaveReason, PartyId,
    RowKind, SessionId, SessionUpdate, Timestamp,
};
use ringside::ringcentral::wire::{
    ConferenceRole, Direction, OriginType, StatusCode, StatusReason,
};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::fmt;

const T0: i64 = 1_700_000_000_000;

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

fn conference_session(conference: usize) -> String {
    format!("s-conf{conference}")
}

fn host_party_id(conference: usize) -> String {
    format!("p-conf{conference}-0")
}

/// The caller's conference-side party: the participant id.
fn participant_id(conference: usize, caller: usize) -> String {
    format!("p-conf{conference}-{caller}")
}

fn original_session(conference: usize, caller: usize) -> String {
    format!("s-conf{conference}-{caller}")
}

/// The host's leg of the caller's original call.
fn original_party_id(conference: usize, caller: usize) -> String {
    format!("p-conf{conference}-{caller}-orig")
}

fn host(conference: usize) -> Identity {
    Identity {
        name: Some(format!("Host {conference}")),
        phone_number: Some(format!("+1650555010{conference}")),
        extension_id: Some(format!("10{conference}")),
    }
}

fn caller(conference: usize, caller: usize) -> Identity {
    Identity {
        name: Some(format!("Caller {conference}.{caller}")),
        phone_number: Some(format!("+1415555{conference}{caller:02}")),
        extension_id: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Plans (what proptest generates) and tokens (the script's steps)
// ---------------------------------------------------------------------------------------------

/// How a caller leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leave {
    OriginalOnly,
    ConferenceOnly,
    OriginalThenConference,
    ConferenceThenOriginal,
    Stay,
}

#[derive(Debug, Clone)]
struct CallerPlan {
    leave: Leave,
    /// The conference-side party appears before the original party goes `Gone`.
    conference_side_first: bool,
    /// The original call reports its host leg `Answered` before the merge.
    answered_before_merge: bool,
    /// Once merged, the caller is put on hold (and muted), then back.
    hold: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndPlan {
    None,
    /// Each remaining conference-side party `Disconnected`, then the host, one notification each.
    Separate,
    /// One notification: the host's `Disconnected` listed first, then the remaining callers.
    OneHostFirst,
    /// One notification: the remaining callers' `Disconnected` first, then the host's.
    OneHostLast,
}

#[derive(Debug, Clone)]
struct ConferencePlan {
    callers: Vec<CallerPlan>,
    end: EndPlan,
    picks: Vec<u8>,
}

#[derive(Debug, Clone)]
struct TransferPlan {
    /// The transfer's `peerId` names a conference session (it must still never join anything).
    into_conference: bool,
    disconnect: bool,
}

#[derive(Debug, Clone)]
struct ScenarioPlan {
    conferences: Vec<ConferencePlan>,
    plain: Vec<Vec<StatusCode>>,
    transfers: Vec<TransferPlan>,
    picks: Vec<u8>,
    delays: Vec<u8>,
    sequence_base: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    HostAnswered(usize),
    OriginalAnswered(usize, usize),
    OriginalGone(usize, usize),
    ConferenceAnswered(usize, usize),
    ConferenceHeld(usize, usize),
    ConferenceResumed(usize, usize),
    OriginalDisconnected(usize, usize),
    ConferenceDisconnected(usize, usize),
    HostDisconnected(usize),
    EndInOne {
        conference: usize,
        host_first: bool,
        callers: Vec<usize>,
    },
    Plain {
        call: usize,
        code: StatusCode,
    },
    TransferAnswered(usize),
    TransferGone {
        call: usize,
        into_conference: Option<usize>,
    },
    TransferDisconnected(usize),
}

impl Token {
    fn session(&self) -> String {
        match self {
            Token::HostAnswered(c)
            | Token::ConferenceAnswered(c, _)
            | Token::ConferenceHeld(c, _)
            | Token::ConferenceResumed(c, _)
            | Token::ConferenceDisconnected(c, _)
            | Token::HostDisconnected(c)
            | Token::EndInOne { conference: c, .. } => conference_session(*c),
            Token::OriginalAnswered(c, n)
            | Token::OriginalGone(c, n)
            | Token::OriginalDisconnected(c, n) => original_session(*c, *n),
            Token::Plain { call, .. } => format!("s-plain{call}"),
            Token::TransferAnswered(call)
            | Token::TransferGone { call, .. }
            | Token::TransferDisconnected(call) => format!("s-xfer{call}"),
        }
    }
}

/// One notification of the in-order script.
#[derive(Clone)]
struct Step {
    token: Token,
    update: SessionUpdate,
    /// Seconds after the previous step (in-order run).
    delay: i64,
}

#[derive(Clone)]
struct Scenario {
    /// Callers per conference.
    callers: Vec<usize>,
    steps: Vec<Step>,
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Scenario (callers per conference: {:?}) [", self.callers)?;
        for (index, step) in self.steps.iter().enumerate() {
            writeln!(
                f,
                "  #{index:<3} {} seq {} {:?}",
                step.update.session_id,
                step.update.sequence.unwrap_or_default(),
                step.token
            )?;
        }
        write!(f, "]")
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn caller_plan() -> impl Strategy<Value = CallerPlan> {
    let leave = prop_oneof![
        Just(Leave::OriginalOnly),
        Just(Leave::ConferenceOnly),
        Just(Leave::OriginalThenConference),
        Just(Leave::ConferenceThenOriginal),
        Just(Leave::Stay),
    ];
    (leave, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(leave, conference_side_first, answered_before_merge, hold)| CallerPlan {
            leave,
            conference_side_first,
            answered_before_merge,
            hold,
        },
    )
}

fn conference_plan() -> impl Strategy<Value = ConferencePlan> {
    let end = prop_oneof![
        Just(EndPlan::None),
        Just(EndPlan::Separate),
        Just(EndPlan::OneHostFirst),
        Just(EndPlan::OneHostLast),
    ];
    (vec(caller_plan(), 1..=6), end, vec(any::<u8>(), 48)).prop_map(|(callers, end, picks)| {
        ConferencePlan {
            callers,
            end,
            picks,
        }
    })
}

fn plain_call() -> impl Strategy<Value = Vec<StatusCode>> {
    let code = prop_oneof![
        Just(StatusCode::Setup),
        Just(StatusCode::Proceeding),
        Just(StatusCode::Answered),
        Just(StatusCode::Hold),
        Just(StatusCode::Disconnected),
    ];
    vec(code, 1..=5)
}

fn transfer_plan() -> impl Strategy<Value = TransferPlan> {
    (any::<bool>(), any::<bool>()).prop_map(|(into_conference, disconnect)| TransferPlan {
        into_conference,
        disconnect,
    })
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        vec(conference_plan(), 1..=3),
        vec(plain_call(), 0..=2),
        // "Occasionally": about one scenario in three has a transfer.
        prop_oneof![2 => Just(Vec::new()), 1 => vec(transfer_plan(), 1..=1)],
        vec(any::<u8>(), 96),
        vec(1u8..=5, 160),
        0u64..1_000_000,
    )
        .prop_map(
            |(conferences, plain, transfers, picks, delays, sequence_base)| {
                build(&ScenarioPlan {
                    conferences,
                    plain,
                    transfers,
                    picks,
                    delays,
                    sequence_base,
                })
            },
        )
}

/// Interleaves scripts, keeping each one's own order; `picks` chooses the next script.
fn interleave<T>(scripts: Vec<Vec<T>>, picks: &[u8]) -> Vec<T> {
    let mut queues: Vec<VecDeque<T>> = scripts.into_iter().map(VecDeque::from).collect();
    let mut out = Vec::new();
    let mut turn = 0;
    loop {
        let open: Vec<usize> = (0..queues.len())
            .filter(|&q| !queues[q].is_empty())
            .collect();
        if open.is_empty() {
            return out;
        }
        let pick = usize::from(picks.get(turn % picks.len().max(1)).copied().unwrap_or(0));
        turn += 1;
        let queue = open[pick % open.len()];
        out.extend(queues[queue].pop_front());
    }
}

fn conference_script(conference: usize, plan: &ConferencePlan) -> Vec<Token> {
    let callers: Vec<Vec<Token>> = plan
        .callers
        .iter()
        .enumerate()
        .map(|(index, caller)| {
            let n = index + 1;
            let mut tokens = Vec::new();
            if caller.answered_before_merge {
                tokens.push(Token::OriginalAnswered(conference, n));
            }
            if caller.conference_side_first {
                tokens.push(Token::ConferenceAnswered(conference, n));
                tokens.push(Token::OriginalGone(conference, n));
            } else {
                tokens.push(Token::OriginalGone(conference, n));
                tokens.push(Token::ConferenceAnswered(conference, n));
            }
            if caller.hold {
                tokens.push(Token::ConferenceHeld(conference, n));
                tokens.push(Token::ConferenceResumed(conference, n));
            }
            match caller.leave {
                Leave::OriginalOnly => tokens.push(Token::OriginalDisconnected(conference, n)),
                Leave::ConferenceOnly => tokens.push(Token::ConferenceDisconnected(conference, n)),
                Leave::OriginalThenConference => {
                    tokens.push(Token::OriginalDisconnected(conference, n));
                    tokens.push(Token::ConferenceDisconnected(conference, n));
                }
                Leave::ConferenceThenOriginal => {
                    tokens.push(Token::ConferenceDisconnected(conference, n));
                    tokens.push(Token::OriginalDisconnected(conference, n));
                }
                Leave::Stay => {}
            }
            tokens
        })
        .collect();
    let mut script = vec![Token::HostAnswered(conference)];
    script.extend(interleave(callers, &plan.picks));
    // Conference-side parties not yet disconnected when the conference ends.
    let remaining: Vec<usize> = plan
        .callers
        .iter()
        .enumerate()
        .filter(|(_, caller)| matches!(caller.leave, Leave::Stay | Leave::OriginalOnly))
        .map(|(index, _)| index + 1)
        .collect();
    match plan.end {
        EndPlan::None => {}
        EndPlan::Separate => {
            script.extend(
                remaining
                    .iter()
                    .map(|&n| Token::ConferenceDisconnected(conference, n)),
            );
            script.push(Token::HostDisconnected(conference));
        }
        EndPlan::OneHostFirst | EndPlan::OneHostLast => script.push(Token::EndInOne {
            conference,
            host_first: plan.end == EndPlan::OneHostFirst,
            callers: remaining,
        }),
    }
    script
}

fn build(plan: &ScenarioPlan) -> Scenario {
    let conferences = plan.conferences.len();
    let mut scripts: Vec<Vec<Token>> = plan
        .conferences
        .iter()
        .enumerate()
        .map(|(c, conference)| conference_script(c, conference))
        .collect();
    for (call, codes) in plan.plain.iter().enumerate() {
        scripts.push(
            codes
                .iter()
                .map(|code| Token::Plain {
                    call,
                    code: code.clone(),
                })
                .collect(),
        );
    }
    for (call, transfer) in plan.transfers.iter().enumerate() {
        let mut script = vec![
            Token::TransferAnswered(call),
            Token::TransferGone {
                call,
                into_conference: transfer.into_conference.then_some(call % conferences),
            },
        ];
        if transfer.disconnect {
            script.push(Token::TransferDisconnected(call));
        }
        scripts.push(script);
    }
    let tokens = interleave(scripts, &plan.picks);
    let mut sequences: BTreeMap<String, u64> = BTreeMap::new();
    let steps = tokens
        .into_iter()
        .enumerate()
        .map(|(index, token)| {
            let session = token.session();
            let sequence = sequences.entry(session).or_insert(plan.sequence_base);
            *sequence += 1;
            let update = notification(&token, *sequence);
            let delay = i64::from(plan.delays[index % plan.delays.len()]);
            Step {
                token,
                update,
                delay,
            }
        })
        .collect();
    Scenario {
        callers: plan.conferences.iter().map(|c| c.callers.len()).collect(),
        steps,
    }
}

// ---------------------------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------------------------

fn pid(value: &str) -> PartyId {
    PartyId::parse(value).unwrap()
}

fn sid(value: &str) -> SessionId {
    SessionId::parse(value).unwrap()
}

fn base_party(id: &str, code: StatusCode) -> PartyUpdate {
    PartyUpdate {
        id: pid(id),
        direction: None,
        from: Identity::default(),
        to: Identity::default(),
        to_conference: false,
        code: Some(code),
        reason: None,
        peer: None,
        role: None,
        muted: None,
    }
}

fn host_party(conference: usize, code: StatusCode) -> PartyUpdate {
    PartyUpdate {
        direction: Some(Direction::Outbound),
        from: host(conference),
        to_conference: true,
        role: Some(ConferenceRole::Host),
        ..base_party(&host_party_id(conference), code)
    }
}

/// A caller's conference-side party: `from` is the host's line, as RingCentral sends it.
fn participant_party(conference: usize, n: usize, code: StatusCode) -> PartyUpdate {
    PartyUpdate {
        direction: Some(Direction::Inbound),
        from: host(conference),
        to_conference: true,
        role: Some(ConferenceRole::Participant),
        peer: Some(Peer {
            telephony_session_id: None,
            party_id: Some(pid(&original_party_id(conference, n))),
        }),
        ..base_party(&participant_id(conference, n), code)
    }
}

/// The host's leg of the caller's original call.
fn original_party(conference: usize, n: usize, code: StatusCode) -> PartyUpdate {
    PartyUpdate {
        direction: Some(Direction::Outbound),
        from: host(conference),
        to: caller(conference, n),
        ..base_party(&original_party_id(conference, n), code)
    }
}

fn notification(token: &Token, sequence: u64) -> SessionUpdate {
    let (origin, parties) = match token {
        Token::HostAnswered(c) => (
            OriginType::Conference,
            vec![host_party(*c, StatusCode::Answered)],
        ),
        Token::HostDisconnected(c) => (
            OriginType::Conference,
            vec![host_party(*c, StatusCode::Disconnected)],
        ),
        Token::ConferenceAnswered(c, n) => (
            OriginType::Conference,
            vec![participant_party(*c, *n, StatusCode::Answered)],
        ),
        Token::ConferenceHeld(c, n) => (
            OriginType::Conference,
            vec![PartyUpdate {
                muted: Some(true),
                ..participant_party(*c, *n, StatusCode::Hold)
            }],
        ),
        Token::ConferenceResumed(c, n) => (
            OriginType::Conference,
            vec![PartyUpdate {
                muted: Some(false),
                ..participant_party(*c, *n, StatusCode::Answered)
            }],
        ),
        Token::ConferenceDisconnected(c, n) => (
            OriginType::Conference,
            vec![participant_party(*c, *n, StatusCode::Disconnected)],
        ),
        Token::EndInOne {
            conference,
            host_first,
            callers,
        } => {
            let mut parties: Vec<PartyUpdate> = callers
                .iter()
                .map(|n| participant_party(*conference, *n, StatusCode::Disconnected))
                .collect();
            let host = host_party(*conference, StatusCode::Disconnected);
            if *host_first {
                parties.insert(0, host);
            } else {
                parties.push(host);
            }
            (OriginType::Conference, parties)
        }
        Token::OriginalAnswered(c, n) => (
            OriginType::Call,
            vec![original_party(*c, *n, StatusCode::Answered)],
        ),
        Token::OriginalGone(c, n) => (
            OriginType::Call,
            vec![PartyUpdate {
                reason: Some(StatusReason::Conference),
                peer: Some(Peer {
                    telephony_session_id: Some(sid(&conference_session(*c))),
                    party_id: Some(pid(&participant_id(*c, *n))),
                }),
                ..original_party(*c, *n, StatusCode::Gone)
            }],
        ),
        Token::OriginalDisconnected(c, n) => (
            OriginType::Call,
            vec![original_party(*c, *n, StatusCode::Disconnected)],
        ),
        Token::Plain { call, code } => {
            let agent = Identity {
                name: Some(format!("Agent {call}")),
                phone_number: Some(format!("+1650555020{call}")),
                extension_id: Some(format!("20{call}")),
            };
            let outside = Identity {
                name: None,
                phone_number: Some(format!("+1212555030{call}")),
                extension_id: None,
            };
            (
                OriginType::Call,
                vec![
                    PartyUpdate {
                        direction: Some(Direction::Outbound),
                        from: agent.clone(),
                        to: outside.clone(),
                        ..base_party(&format!("p-plain{call}-1"), code.clone())
                    },
                    PartyUpdate {
                        direction: Some(Direction::Inbound),
                        from: agent,
                        to: outside,
                        ..base_party(&format!("p-plain{call}-2"), code.clone())
                    },
                ],
            )
        }
        Token::TransferAnswered(call) => (
            OriginType::Call,
            vec![transfer_party(*call, StatusCode::Answered)],
        ),
        Token::TransferGone {
            call,
            into_conference,
        } => {
            let target = match into_conference {
                Some(c) => conference_session(*c),
                None => format!("s-xfer{call}-target"),
            };
            (
                OriginType::Call,
                vec![PartyUpdate {
                    reason: Some(StatusReason::AttendedTransfer),
                    peer: Some(Peer {
                        telephony_session_id: Some(sid(&target)),
                        party_id: Some(pid(&format!("p-xfer{call}-target"))),
                    }),
                    ..transfer_party(*call, StatusCode::Gone)
                }],
            )
        }
        Token::TransferDisconnected(call) => (
            OriginType::Call,
            vec![transfer_party(*call, StatusCode::Disconnected)],
        ),
    };
    SessionUpdate {
        session_id: sid(&token.session()),
        sequence: Some(sequence),
        event_time: None,
        origin: Some(origin),
        parties,
    }
}

fn transfer_party(call: usize, code: StatusCode) -> PartyUpdate {
    PartyUpdate {
        direction: Some(Direction::Outbound),
        from: Identity {
            name: Some(format!("Agent x{call}")),
            phone_number: Some(format!("+1650555040{call}")),
            extension_id: Some(format!("40{call}")),
        },
        to: Identity {
            name: None,
            phone_number: Some(format!("+1212555050{call}")),
            extension_id: None,
        },
        ..base_party(&format!("p-xfer{call}-1"), code)
    }
}

/// The update as an input received at `millis` after `T0` (its `eventTime` too).
fn input(update: &SessionUpdate, millis: i64) -> Input {
    let at = Timestamp(T0 + millis);
    let mut notification = update.clone();
    notification.event_time = Some(at);
    Input::Notification {
        received_at: at,
        notification,
    }
}

// ---------------------------------------------------------------------------------------------
// Expected events, from the script alone
// ---------------------------------------------------------------------------------------------

/// An event reduced to what the properties compare.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Started {
        conference: String,
        host: Option<Identity>,
    },
    Joined {
        conference: String,
        participant: String,
        on_call: u32,
    },
    Left {
        conference: String,
        participant: String,
        reason: LeaveReason,
        on_call: u32,
    },
    Ended {
        conference: String,
        participants: u32,
        peak: u32,
    },
}

impl Seen {
    fn of(event: &ConferenceEvent) -> Seen {
        let conference = event.conference_id.to_string();
        match &event.kind {
            EventKind::ConferenceStarted { host } => Seen::Started {
                conference,
                host: host.clone(),
            },
            EventKind::ParticipantJoined {
                participant_id,
                on_call,
                ..
            } => Seen::Joined {
                conference,
                participant: participant_id.to_string(),
                on_call: *on_call,
            },
            EventKind::ParticipantLeft {
                participant_id,
                reason,
                on_call,
                ..
            } => Seen::Left {
                conference,
                participant: participant_id.to_string(),
                reason: *reason,
                on_call: *on_call,
            },
            EventKind::ConferenceEnded {
                participants, peak, ..
            } => Seen::Ended {
                conference,
                participants: *participants,
                peak: *peak,
            },
        }
    }

    /// (type, conference_id, participant_id).
    fn triple(&self) -> (&'static str, String, Option<String>) {
        match self {
            Seen::Started { conference, .. } => ("conference_started", conference.clone(), None),
            Seen::Joined {
                conference,
                participant,
                ..
            } => (
                "participant_joined",
                conference.clone(),
                Some(participant.clone()),
            ),
            Seen::Left {
                conference,
                participant,
                ..
            } => (
                "participant_left",
                conference.clone(),
                Some(participant.clone()),
            ),
            Seen::Ended { conference, .. } => ("conference_ended", conference.clone(), None),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallerState {
    Pending,
    Live,
    Left,
}

struct ModelConference {
    started: bool,
    ended: bool,
    host_left: bool,
    callers: Vec<CallerState>,
    joined: u32,
    peak: u32,
}

impl ModelConference {
    fn on_call(&self) -> u32 {
        let live = self
            .callers
            .iter()
            .filter(|state| **state == CallerState::Live)
            .count();
        u32::try_from(live).unwrap()
    }
}

/// The events the in-order script must produce: `conference_started` first, a join at each
/// caller's first merge signal, a leave at its first leave signal (`hung_up`, or
/// `conference_ended` once the host is gone or when the conference ends with it on), and
/// `conference_ended` with the callers who joined and the most on at once.
fn expected(scenario: &Scenario) -> Vec<Seen> {
    let mut model: Vec<ModelConference> = scenario
        .callers
        .iter()
        .map(|&callers| ModelConference {
            started: false,
            ended: false,
            host_left: false,
            callers: vec![CallerState::Pending; callers + 1],
            joined: 0,
            peak: 0,
        })
        .collect();
    let mut out = Vec::new();
    let join = |model: &mut Vec<ModelConference>, out: &mut Vec<Seen>, c: usize, n: usize| {
        let conference = &mut model[c];
        if conference.ended || conference.callers[n] != CallerState::Pending {
            return;
        }
        assert!(conference.started, "scripts start with the host");
        conference.callers[n] = CallerState::Live;
        conference.joined += 1;
        let on_call = conference.on_call();
        conference.peak = conference.peak.max(on_call);
        out.push(Seen::Joined {
            conference: conference_session(c),
            participant: participant_id(c, n),
            on_call,
        });
    };
    let leave = |model: &mut Vec<ModelConference>,
                 out: &mut Vec<Seen>,
                 c: usize,
                 n: usize,
                 ending: bool| {
        let conference = &mut model[c];
        if conference.ended || conference.callers[n] != CallerState::Live {
            return;
        }
        conference.callers[n] = CallerState::Left;
        let reason = if ending || conference.host_left {
            LeaveReason::ConferenceEnded
        } else {
            LeaveReason::HungUp
        };
        out.push(Seen::Left {
            conference: conference_session(c),
            participant: participant_id(c, n),
            reason,
            on_call: conference.on_call(),
        });
    };
    let end = |model: &mut Vec<ModelConference>, out: &mut Vec<Seen>, c: usize| {
        if model[c].ended {
            return;
        }
        for n in 1..model[c].callers.len() {
            leave(model, out, c, n, true);
        }
        let conference = &mut model[c];
        conference.ended = true;
        if conference.started {
            out.push(Seen::Ended {
                conference: conference_session(c),
                participants: conference.joined,
                peak: conference.peak,
            });
        }
    };
    for step in &scenario.steps {
        match &step.token {
            Token::HostAnswered(c) => {
                let conference = &mut model[*c];
                if !conference.started && !conference.ended {
                    conference.started = true;
                    out.push(Seen::Started {
                        conference: conference_session(*c),
                        host: Some(host(*c)),
                    });
                }
            }
            Token::OriginalGone(c, n)
            | Token::ConferenceAnswered(c, n)
            | Token::ConferenceHeld(c, n)
            | Token::ConferenceResumed(c, n) => {
                join(&mut model, &mut out, *c, *n);
            }
            Token::OriginalDisconnected(c, n) | Token::ConferenceDisconnected(c, n) => {
                leave(&mut model, &mut out, *c, *n, false);
            }
            Token::HostDisconnected(c) => {
                // Every conference-side caller party is already `Disconnected` by construction.
                model[*c].host_left = true;
                end(&mut model, &mut out, *c);
            }
            Token::EndInOne {
                conference,
                host_first,
                callers,
            } => {
                if *host_first {
                    model[*conference].host_left = true;
                }
                // The notification that ends the conference: whoever it still finds on leaves
                // because the conference ended, whatever the order of its parties.
                for n in callers {
                    leave(&mut model, &mut out, *conference, *n, true);
                }
                model[*conference].host_left = true;
                end(&mut model, &mut out, *conference);
            }
            Token::OriginalAnswered(..)
            | Token::Plain { .. }
            | Token::TransferAnswered(_)
            | Token::TransferGone { .. }
            | Token::TransferDisconnected(_) => {}
        }
    }
    out
}

/// Per conference, the live participant ids; conferences with nobody live are left out (an
/// ended conference and an absent one look the same).
fn roster(detector: &Detector) -> BTreeMap<String, BTreeSet<String>> {
    detector
        .views()
        .into_iter()
        .map(|view| {
            let live: BTreeSet<String> = view.live().map(|p| p.id.to_string()).collect();
            (view.id.to_string(), live)
        })
        .filter(|(_, live)| !live.is_empty())
        .collect()
}

/// The final roster the script describes: callers who stayed, in conferences that did not end.
fn expected_roster(scenario: &Scenario) -> BTreeMap<String, BTreeSet<String>> {
    let mut live: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for step in &scenario.steps {
        match &step.token {
            Token::OriginalGone(c, n) | Token::ConferenceAnswered(c, n) => {
                live.entry(conference_session(*c))
                    .or_default()
                    .insert(participant_id(*c, *n));
            }
            _ => {}
        }
    }
    for step in &scenario.steps {
        match &step.token {
            Token::OriginalDisconnected(c, n) | Token::ConferenceDisconnected(c, n) => {
                if let Some(set) = live.get_mut(&conference_session(*c)) {
                    set.remove(&participant_id(*c, *n));
                }
            }
            Token::HostDisconnected(c) | Token::EndInOne { conference: c, .. } => {
                live.remove(&conference_session(*c));
            }
            _ => {}
        }
    }
    live.retain(|_, set| !set.is_empty());
    live
}

// ---------------------------------------------------------------------------------------------
// Runs and checks
// ---------------------------------------------------------------------------------------------

/// The in-order inputs: received times increase by the script's delays.
fn in_order(scenario: &Scenario) -> Vec<Input> {
    let mut millis = 0;
    scenario
        .steps
        .iter()
        .map(|step| {
            millis += step.delay * 1000;
            input(&step.update, millis)
        })
        .collect()
}

/// The inputs for an arbitrary order of step indices (repeats allowed): times increase by two
/// seconds in that order, so a repeated step always arrives later than its first delivery.
fn reordered(scenario: &Scenario, order: &[usize]) -> Vec<Input> {
    order
        .iter()
        .enumerate()
        .map(|(position, &index)| {
            let millis = i64::try_from(position + 1).unwrap() * 2000;
            input(&scenario.steps[index].update, millis)
        })
        .collect()
}

/// Inserts each duplicate `(which, where)` after the first delivery of step `which % len`.
fn with_duplicates(order: Vec<usize>, duplicates: &[(usize, usize)]) -> Vec<usize> {
    let len = order.len();
    let mut order = order;
    if len == 0 {
        return order;
    }
    for &(which, place) in duplicates {
        let step = which % len;
        let first = order.iter().position(|&i| i == step).unwrap();
        let slots = order.len() - first;
        order.insert(first + 1 + place % slots, step);
    }
    order
}

fn run(detector: &mut Detector, inputs: Vec<Input>) -> Vec<ConferenceEvent> {
    inputs
        .into_iter()
        .flat_map(|input| detector.apply(input))
        .collect()
}

fn seen(events: &[ConferenceEvent]) -> Vec<Seen> {
    events.iter().map(Seen::of).collect()
}

fn triples(seen: &[Seen]) -> Vec<(&'static str, String, Option<String>)> {
    seen.iter().map(Seen::triple).collect()
}

/// Exactly the scripted events: first as (type, conference, participant), then in full (leave
/// reasons, `on_call`, the end's counts, the start's host).
fn check_exact(actual: &[ConferenceEvent], scenario: &Scenario) -> Result<(), TestCaseError> {
    let want = expected(scenario);
    let got = seen(actual);
    prop_assert_eq!(triples(&got), triples(&want));
    for (got, want) in got.iter().zip(&want) {
        prop_assert_eq!(got, want);
    }
    Ok(())
}

/// What no order and no duplication may break.
fn check_invariants(events: &[ConferenceEvent], scenario: &Scenario) -> Result<(), TestCaseError> {
    let mut ids = HashSet::new();
    let mut started = HashSet::new();
    let mut ended = HashSet::new();
    let mut joined = HashSet::new();
    let mut left = HashSet::new();
    for event in events {
        prop_assert!(ids.insert(event.id.clone()), "event id twice: {}", event.id);
        let conference = event.conference_id.to_string();
        let index = (0..scenario.callers.len()).find(|&c| conference_session(c) == conference);
        prop_assert!(
            index.is_some(),
            "event for something that is not a conference: {event:?}"
        );
        let index = index.unwrap_or_default();
        prop_assert!(
            !ended.contains(&conference),
            "event after conference_ended: {event:?}"
        );
        match &event.kind {
            EventKind::ConferenceStarted { .. } => {
                started.insert(conference);
            }
            EventKind::ConferenceEnded { .. } => {
                prop_assert!(started.contains(&conference), "end before start: {event:?}");
                ended.insert(conference);
            }
            EventKind::ParticipantJoined {
                participant_id: who,
                ..
            } => {
                let key = (conference.clone(), who.to_string());
                prop_assert!(
                    (1..=scenario.callers[index]).any(|n| who.as_str() == participant_id(index, n)),
                    "join of someone who is not a scripted caller: {event:?}"
                );
                prop_assert!(
                    started.contains(&conference),
                    "join before start: {event:?}"
                );
                prop_assert!(!left.contains(&key), "join after leave: {event:?}");
                joined.insert(key);
            }
            EventKind::ParticipantLeft { participant_id, .. } => {
                let key = (conference, participant_id.to_string());
                prop_assert!(joined.contains(&key), "leave without a join: {event:?}");
                left.insert(key);
            }
        }
    }
    Ok(())
}

/// More steps than any scenario has (3 conferences of 6 callers, plain calls, a transfer).
const MAX_STEPS: usize = 160;

/// A permutation of the scenario's steps (a shuffled `0..MAX_STEPS` restricted to the scenario)
/// with duplicates delivered later. Independent of the scenario, so both shrink well.
fn shuffled_with_duplicates() -> impl Strategy<Value = (Scenario, Vec<usize>)> {
    let order = Just((0..MAX_STEPS).collect::<Vec<usize>>()).prop_shuffle();
    let duplicates = vec((0..MAX_STEPS, 0..MAX_STEPS), 0..=MAX_STEPS / 4);
    (scenario(), order, duplicates).prop_map(|(scenario, order, duplicates)| {
        let len = scenario.steps.len();
        assert!(len <= MAX_STEPS, "{len} steps");
        let order = order.into_iter().filter(|&i| i < len).collect();
        let order = with_duplicates(order, &duplicates);
        (scenario, order)
    })
}

fn in_order_with_duplicates() -> impl Strategy<Value = (Scenario, Vec<usize>)> {
    let duplicates = vec((0..MAX_STEPS, 0..MAX_STEPS), 0..=MAX_STEPS / 2);
    (scenario(), duplicates).prop_map(|(scenario, duplicates)| {
        let order = with_duplicates((0..scenario.steps.len()).collect(), &duplicates);
        (scenario, order)
    })
}

fn split_point() -> impl Strategy<Value = (Scenario, usize)> {
    (scenario(), any::<prop::sample::Index>()).prop_map(|(scenario, split)| {
        let split = split.index(scenario.steps.len() + 1);
        (scenario, split)
    })
}

/// Proptest's defaults (`PROPTEST_CASES` cases, 256 when unset) with `numerator / denominator`
/// of the cases: the costlier properties run a fraction of the base count.
fn config(numerator: u32, denominator: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    ProptestConfig {
        cases: (base.cases.saturating_mul(numerator) / denominator).max(1),
        // Failures are reported with their minimal case; no regression file is written.
        failure_persistence: None,
        ..base
    }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(1, 1))]

    /// Completeness: the in-order run yields exactly the scripted events, and the final roster
    /// and identities are the script's.
    #[test]
    fn in_order_run_yields_exactly_the_scripted_events(scenario in scenario()) {
        let mut detector = Detector::default();
        let events = run(&mut detector, in_order(&scenario));
        check_exact(&events, &scenario)?;
        check_invariants(&events, &scenario)?;
        prop_assert_eq!(roster(&detector), expected_roster(&scenario));
        for view in detector.views() {
            let c = (0..scenario.callers.len())
                .find(|&c| conference_session(c) == view.id.as_str())
                .unwrap();
            prop_assert_eq!(view.host.as_ref(), Some(&host(c)));
            for participant in &view.participants {
                let n = (1..=scenario.callers[c])
                    .find(|&n| participant_id(c, n) == participant.id.as_str())
                    .unwrap();
                prop_assert_eq!(&participant.identity, &caller(c, n));
            }
        }
    }
}

proptest! {
    #![proptest_config(config(1, 1))]

    /// Robustness: any order plus duplicates keeps every promise, and ends on the same roster.
    #[test]
    fn any_order_with_duplicates_keeps_the_promises_and_the_final_roster(
        (scenario, order) in shuffled_with_duplicates()
    ) {
        let mut reference = Detector::default();
        run(&mut reference, in_order(&scenario));
        let mut detector = Detector::default();
        let events = run(&mut detector, reordered(&scenario, &order));
        check_invariants(&events, &scenario)?;
        prop_assert_eq!(roster(&detector), roster(&reference), "order: {:?}", order);
        let conferences: BTreeSet<String> =
            (0..scenario.callers.len()).map(conference_session).collect();
        for view in detector.views() {
            prop_assert!(conferences.contains(view.id.as_str()), "view of {}", view.id);
        }
    }
}

proptest! {
    #![proptest_config(config(1, 2))]

    /// Serialization: a `serde_json` round trip at any point yields the same events and state.
    #[test]
    fn a_serde_round_trip_anywhere_changes_nothing((scenario, split) in split_point()) {
        let inputs = in_order(&scenario);
        let mut uninterrupted = Detector::default();
        let whole = run(&mut uninterrupted, inputs.clone());

        let mut first = Detector::default();
        let mut events = run(&mut first, inputs[..split].to_vec());
        let state = serde_json::to_string(&first).unwrap();
        let mut restored = serde_json::from_str::<Detector>(&state)
            .unwrap()
            .with_config(DetectorConfig::default());
        events.extend(run(&mut restored, inputs[split..].to_vec()));
        prop_assert_eq!(&events, &whole);
        prop_assert_eq!(restored.views(), uninterrupted.views());
        prop_assert_eq!(
            serde_json::to_value(&restored).unwrap(),
            serde_json::to_value(&uninterrupted).unwrap()
        );
    }
}

proptest! {
    #![proptest_config(config(3, 4))]

    /// Duplicates: in order, with inputs delivered again later, yields exactly the scripted
    /// events.
    #[test]
    fn duplicates_in_order_yield_exactly_the_scripted_events(
        (scenario, order) in in_order_with_duplicates()
    ) {
        let mut detector = Detector::default();
        let events = run(&mut detector, reordered(&scenario, &order));
        check_exact(&events, &scenario)?;
        prop_assert_eq!(roster(&detector), expected_roster(&scenario));
    }
}

/// The rows the pipeline keeps: each input's changed rows written over the previous ones.
type Rows = BTreeMap<(RowKind, String), String>;

fn save(detector: &mut Detector, rows: &mut Rows) {
    for row in detector.take_changes().unwrap() {
        match row.body {
            Some(body) => rows.insert((row.kind, row.key), body),
            None => rows.remove(&(row.kind, row.key)),
        };
    }
}

fn restore(rows: &Rows) -> Detector {
    let rows = rows
        .iter()
        .map(|((kind, key), body)| (*kind, key.clone(), body.clone()));
    Detector::from_rows(DetectorConfig::default(), rows).unwrap()
}

proptest! {
    #![proptest_config(config(1, 2))]

    /// Durable rows: writing only the rows each input changed (as every commit does), the rows
    /// restore exactly the detector that wrote them — after any order with duplicates, at any
    /// point, and after forgetting (a tick past `forget_after`, then past the tombstones) — and
    /// the restored detector goes on to produce the same events.
    #[test]
    fn the_changed_rows_alone_restore_the_whole_state(
        (scenario, order) in shuffled_with_duplicates(),
        split in any::<prop::sample::Index>(),
    ) {
        let mut inputs = reordered(&scenario, &order);
        let end = i64::try_from(inputs.len() + 1).unwrap() * 2000;
        inputs.push(Input::Tick { now: Timestamp(end + 11 * 60 * 1000) });
        inputs.push(Input::Tick { now: Timestamp(end + 26 * 60 * 60 * 1000) });
        let split = split.index(inputs.len() + 1);

        let mut uninterrupted = Detector::default();
        let whole = run(&mut uninterrupted, inputs.clone());

        let mut first = Detector::default();
        let mut rows = Rows::new();
        let mut events = Vec::new();
        for input in inputs[..split].iter().cloned() {
            events.extend(first.apply(input));
            save(&mut first, &mut rows);
            let restored = restore(&rows);
            prop_assert_eq!(
                serde_json::to_value(&restored).unwrap(),
                serde_json::to_value(&first).unwrap()
            );
        }
        let mut restored = restore(&rows);
        for input in inputs[split..].iter().cloned() {
            events.extend(restored.apply(input));
            save(&mut restored, &mut rows);
        }
        prop_assert_eq!(&events, &whole);
        prop_assert_eq!(
            serde_json::to_value(restore(&rows)).unwrap(),
            serde_json::to_value(&uninterrupted).unwrap()
        );
    }
}

/// The minimal case the completeness property first shrank to: one notification disconnects the
/// last caller and then the host, ending the conference. The caller was still on when the
/// conference ended, so it leaves with `conference_ended` although its party is listed first
/// (the detector used to answer `hung_up` here).
#[test]
fn one_notification_ending_the_conference_with_the_host_listed_last() {
    let steps = [
        Token::HostAnswered(0),
        Token::OriginalGone(0, 1),
        Token::ConferenceAnswered(0, 1),
        Token::EndInOne {
            conference: 0,
            host_first: false,
            callers: vec![1],
        },
    ];
    let mut sequences: BTreeMap<String, u64> = BTreeMap::new();
    let scenario = Scenario {
        callers: vec![1],
        steps: steps
            .into_iter()
            .map(|token| {
                let sequence = sequences.entry(token.session()).or_default();
                *sequence += 1;
                Step {
                    update: notification(&token, *sequence),
                    token,
                    delay: 1,
                }
            })
            .collect(),
    };
    let events = run(&mut Detector::default(), in_order(&scenario));
    let left: Vec<LeaveReason> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::ParticipantLeft { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(left, [LeaveReason::ConferenceEnded], "{:#?}", seen(&events));
}
