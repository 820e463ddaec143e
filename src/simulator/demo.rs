//! The scripted conference behind `ringside demo`.

use std::ops::Range;
use std::time::Duration;

use time::OffsetDateTime;

use super::{CallerRef, ConferenceScript, LeaveSignal, Person};

/// Seed of the demo conference, so every demo run shows the same ids.
pub const DEMO_SEED: u64 = 0x0122_c0f3;

/// The demo conference and the hooks a demo needs to act on it.
#[derive(Debug, Clone)]
pub struct DemoScript {
    /// The whole conference, kick included.
    pub script: ConferenceScript,
    /// The callers in join order, with their refs into `script`.
    pub callers: Vec<(Person, CallerRef)>,
    /// The caller who hangs up on their own (signalled with [`LeaveSignal::Both`]).
    pub leaves: CallerRef,
    /// The caller the demo kicks itself.
    pub kicked: CallerRef,
    /// Which notifications are the platform's answer to the kick: a demo that performs the
    /// kick plays `notifications()[..kick.start]`, kicks `script.participant_id(kicked)` on
    /// `script.conference_id()`, then plays the rest.
    pub kick: Range<usize>,
}

/// The demo conference, on a clock starting at `base`: host "Agent 122" starts it; "Paco Vu",
/// "Dana Whitfield" and "Ravi Anand" join minutes apart; Paco is kicked; Dana hangs up; the
/// host ends it with Ravi still in it. About a quarter of an hour of event time.
pub fn demo_script(base: OffsetDateTime) -> DemoScript {
    let host = Person::with_extension("Agent 122", "+16505550122", "62295300122");
    let mut script = ConferenceScript::new(DEMO_SEED, host, base);
    let people = [
        Person::with_extension("Paco Vu", "11119", "62288300119"),
        Person::new("Dana Whitfield", "+14155550142"),
        Person::new("Ravi Anand", "+442071838750"),
    ];

    script.advance(Duration::from_secs(5));
    script.start();
    let mut callers = Vec::new();
    for (person, wait) in people.into_iter().zip([20, 180, 150]) {
        script.advance(Duration::from_secs(wait));
        let caller = script.call_and_merge(person.clone());
        callers.push((person, caller));
    }
    let (paco, dana) = (callers[0].1, callers[1].1);

    script.advance(Duration::from_secs(240));
    let kick_start = script.notifications().len();
    script.kick(paco);
    let kick = kick_start..script.notifications().len();

    script.advance(Duration::from_secs(180));
    script.hang_up(dana, LeaveSignal::Both);

    script.advance(Duration::from_secs(120));
    script.end();
    DemoScript {
        script,
        callers,
        leaves: dana,
        kicked: paco,
        kick,
    }
}
