//! Who may use the commands (the README's "Who may do what"): pure decisions from `[access]`,
//! the configured guild and the member an interaction carries, plus the per-member kick limit.
//!
//! - Interactions from another guild or from a DM are refused.
//! - Listing: every member of the guild when `list_roles` and `list_users` are both empty, else
//!   the listed roles and users; anyone who may kick may also list.
//! - Kicking: the listed `kick_roles` / `kick_users`, and members with the Administrator
//!   permission (always); nobody at all when `kick_enabled` is false.
//! - Kicks per member are limited to `kick_limit_per_minute` in any sliding minute (in memory).
//!
//! The command, its autocomplete and the confirmation button all ask again: Discord's own
//! command permissions are only a default an admin can change.

use crate::config::Access;
use dashmap::DashMap;
use serenity::model::Permissions;
use std::collections::VecDeque;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

/// The sliding window of the kick limit.
pub const KICK_WINDOW_MS: i64 = 60_000;

/// The member behind an interaction, as far as access is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The guild the interaction came from; `None` for a DM.
    pub guild_id: Option<u64>,
    pub user_id: u64,
    pub roles: Vec<u64>,
    /// `member.permissions` (the member's permissions in the channel), when Discord sent them.
    pub permissions: Option<Permissions>,
}

impl Caller {
    fn is_admin(&self) -> bool {
        self.permissions
            .is_some_and(|p| p.contains(Permissions::ADMINISTRATOR))
    }
}

/// Why a member may not do something, in words the member reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    DirectMessage,
    OtherGuild,
    NoListAccess,
    NoKickAccess,
    KickDisabled,
    /// The per-member limit; `retry_secs` until the oldest kick leaves the window.
    TooManyKicks {
        limit: u32,
        retry_secs: i64,
    },
}

impl Refusal {
    /// The sentence shown to the member (ephemeral) and kept in the audit log.
    pub fn plain(&self) -> String {
        match self {
            Refusal::DirectMessage => "ringside's commands only work inside its server.".into(),
            Refusal::OtherGuild => {
                "ringside's commands only work in the server it is set up for.".into()
            }
            Refusal::NoListAccess => "You are not allowed to list conference participants.".into(),
            Refusal::NoKickAccess => "You are not allowed to remove callers.".into(),
            Refusal::KickDisabled => "Removing callers is turned off.".into(),
            Refusal::TooManyKicks { limit, retry_secs } => {
                format!("Too many removals: at most {limit} a minute. Try again in {retry_secs}s.")
            }
        }
    }

    /// A short label for metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Refusal::DirectMessage => "dm",
            Refusal::OtherGuild => "other_guild",
            Refusal::NoListAccess => "no_list_access",
            Refusal::NoKickAccess => "no_kick_access",
            Refusal::KickDisabled => "kick_disabled",
            Refusal::TooManyKicks { .. } => "kick_limit",
        }
    }
}

/// `[access]` applied to one guild, with the kick limiter.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Replaced when the settings file changes ([`Policy::set_access`]); read per decision.
    access: Arc<RwLock<Access>>,
    guild_id: u64,
    kicks: Arc<DashMap<u64, VecDeque<i64>>>,
}

impl Policy {
    pub fn new(access: Access, guild_id: u64) -> Policy {
        Policy {
            access: Arc::new(RwLock::new(access)),
            guild_id,
            kicks: Arc::default(),
        }
    }

    /// Replaces `[access]` (a reload of the settings file); the kick limiter's counts stay.
    pub fn set_access(&self, access: Access) {
        *self.access.write().unwrap_or_else(PoisonError::into_inner) = access;
    }

    /// `[access]` as in force now.
    fn access(&self) -> RwLockReadGuard<'_, Access> {
        self.access.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn kick_enabled(&self) -> bool {
        self.access().kick_enabled
    }

    /// The interaction comes from the configured guild.
    pub fn place(&self, caller: &Caller) -> Result<(), Refusal> {
        match caller.guild_id {
            None => Err(Refusal::DirectMessage),
            Some(guild) if guild != self.guild_id => Err(Refusal::OtherGuild),
            Some(_) => Ok(()),
        }
    }

    fn listed_for_kick(&self, caller: &Caller) -> bool {
        let access = self.access();
        caller.is_admin()
            || access.kick_users.contains(&caller.user_id)
            || caller
                .roles
                .iter()
                .any(|role| access.kick_roles.contains(role))
    }

    /// May list participants.
    pub fn can_list(&self, caller: &Caller) -> Result<(), Refusal> {
        self.place(caller)?;
        let (open, listed) = {
            let access = self.access();
            let open = access.list_roles.is_empty() && access.list_users.is_empty();
            let listed = access.list_users.contains(&caller.user_id)
                || caller
                    .roles
                    .iter()
                    .any(|role| access.list_roles.contains(role));
            (open, listed)
        };
        if open || listed || self.listed_for_kick(caller) {
            Ok(())
        } else {
            Err(Refusal::NoListAccess)
        }
    }

    /// May remove callers (the limit is checked separately).
    pub fn can_kick(&self, caller: &Caller) -> Result<(), Refusal> {
        self.place(caller)?;
        if !self.kick_enabled() {
            return Err(Refusal::KickDisabled);
        }
        if self.listed_for_kick(caller) {
            Ok(())
        } else {
            Err(Refusal::NoKickAccess)
        }
    }

    fn window(
        &self,
        user_id: u64,
        now_ms: i64,
    ) -> dashmap::mapref::one::RefMut<'_, u64, VecDeque<i64>> {
        let mut entry = self.kicks.entry(user_id).or_default();
        while entry
            .front()
            .is_some_and(|at| now_ms.saturating_sub(*at) >= KICK_WINDOW_MS)
        {
            entry.pop_front();
        }
        entry
    }

    fn over_limit(&self, recent: &VecDeque<i64>, now_ms: i64) -> Result<(), Refusal> {
        let limit = self.access().kick_limit_per_minute.max(1);
        if recent.len() < limit as usize {
            return Ok(());
        }
        let oldest = recent.front().copied().unwrap_or(now_ms);
        let retry_ms = (oldest + KICK_WINDOW_MS - now_ms).max(0);
        Err(Refusal::TooManyKicks {
            limit,
            retry_secs: (retry_ms + 999) / 1000,
        })
    }

    /// Whether the member could kick now under the limit, without using one.
    pub fn check_limit(&self, user_id: u64, now_ms: i64) -> Result<(), Refusal> {
        let recent = self.window(user_id, now_ms);
        self.over_limit(&recent, now_ms)
    }

    /// Uses one kick of the member's limit, or refuses.
    pub fn take_kick(&self, user_id: u64, now_ms: i64) -> Result<(), Refusal> {
        let mut recent = self.window(user_id, now_ms);
        self.over_limit(&recent, now_ms)?;
        recent.push_back(now_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUILD: u64 = 10;
    const MOD_ROLE: u64 = 500;
    const LIST_ROLE: u64 = 600;

    fn access() -> Access {
        Access {
            list_roles: vec![],
            list_users: vec![],
            kick_roles: vec![],
            kick_users: vec![],
            kick_enabled: true,
            kick_limit_per_minute: 2,
        }
    }

    fn member(user_id: u64, roles: &[u64], admin: bool) -> Caller {
        Caller {
            guild_id: Some(GUILD),
            user_id,
            roles: roles.to_vec(),
            permissions: Some(if admin {
                Permissions::ADMINISTRATOR | Permissions::SEND_MESSAGES
            } else {
                Permissions::SEND_MESSAGES
            }),
        }
    }

    /// (what, access, member, may list, may kick)
    type Row = (
        &'static str,
        Access,
        Caller,
        Result<(), Refusal>,
        Result<(), Refusal>,
    );

    #[test]
    fn decisions_table() {
        let restricted = Access {
            list_roles: vec![LIST_ROLE],
            list_users: vec![7],
            kick_roles: vec![MOD_ROLE],
            kick_users: vec![8],
            ..access()
        };
        let disabled = Access {
            kick_enabled: false,
            ..restricted.clone()
        };
        let dm = Caller {
            guild_id: None,
            ..member(1, &[], true)
        };
        let elsewhere = Caller {
            guild_id: Some(99),
            ..member(1, &[], true)
        };
        let no_permissions = Caller {
            permissions: None,
            ..member(1, &[], false)
        };
        // (name, access, caller, can_list, can_kick)
        let table: Vec<Row> = vec![
            (
                "default: plain member lists, cannot kick",
                access(),
                member(1, &[], false),
                Ok(()),
                Err(Refusal::NoKickAccess),
            ),
            (
                "default: admin kicks",
                access(),
                member(1, &[], true),
                Ok(()),
                Ok(()),
            ),
            (
                "default: no permissions sent",
                access(),
                no_permissions,
                Ok(()),
                Err(Refusal::NoKickAccess),
            ),
            (
                "dm refused",
                access(),
                dm,
                Err(Refusal::DirectMessage),
                Err(Refusal::DirectMessage),
            ),
            (
                "other guild refused",
                access(),
                elsewhere,
                Err(Refusal::OtherGuild),
                Err(Refusal::OtherGuild),
            ),
            (
                "restricted: plain member",
                restricted.clone(),
                member(1, &[], false),
                Err(Refusal::NoListAccess),
                Err(Refusal::NoKickAccess),
            ),
            (
                "restricted: list role",
                restricted.clone(),
                member(1, &[LIST_ROLE], false),
                Ok(()),
                Err(Refusal::NoKickAccess),
            ),
            (
                "restricted: list user",
                restricted.clone(),
                member(7, &[], false),
                Ok(()),
                Err(Refusal::NoKickAccess),
            ),
            (
                "restricted: kick role implies list",
                restricted.clone(),
                member(1, &[MOD_ROLE], false),
                Ok(()),
                Ok(()),
            ),
            (
                "restricted: kick user implies list",
                restricted.clone(),
                member(8, &[], false),
                Ok(()),
                Ok(()),
            ),
            (
                "restricted: admin may always kick",
                restricted.clone(),
                member(1, &[], true),
                Ok(()),
                Ok(()),
            ),
            (
                "disabled: kick role refused",
                disabled.clone(),
                member(1, &[MOD_ROLE], false),
                Ok(()),
                Err(Refusal::KickDisabled),
            ),
            (
                "disabled: admin refused",
                disabled,
                member(1, &[], true),
                Ok(()),
                Err(Refusal::KickDisabled),
            ),
        ];
        for (name, access, caller, list, kick) in table {
            let policy = Policy::new(access, GUILD);
            assert_eq!(policy.can_list(&caller), list, "{name}: list");
            assert_eq!(policy.can_kick(&caller), kick, "{name}: kick");
        }
    }

    #[test]
    fn the_kick_limit_slides_per_member() {
        let policy = Policy::new(access(), GUILD);
        assert_eq!(policy.take_kick(1, 0), Ok(()));
        assert_eq!(policy.take_kick(1, 30_000), Ok(()));
        assert_eq!(
            policy.check_limit(1, 40_000),
            Err(Refusal::TooManyKicks {
                limit: 2,
                retry_secs: 20
            })
        );
        assert!(policy.take_kick(1, 59_999).is_err());
        // Another member has their own budget.
        assert_eq!(policy.take_kick(2, 59_999), Ok(()));
        // The first kick leaves the window after a minute.
        assert_eq!(policy.take_kick(1, 60_000), Ok(()));
        assert!(policy.take_kick(1, 60_001).is_err());
        assert_eq!(policy.check_limit(1, 90_000), Ok(()));
    }

    #[test]
    fn refusals_read_as_plain_sentences() {
        for refusal in [
            Refusal::DirectMessage,
            Refusal::OtherGuild,
            Refusal::NoListAccess,
            Refusal::NoKickAccess,
            Refusal::KickDisabled,
            Refusal::TooManyKicks {
                limit: 5,
                retry_secs: 12,
            },
        ] {
            let text = refusal.plain();
            assert!(text.ends_with('.'), "{text}");
            assert!(text.len() < 120, "{text}");
        }
    }

    #[test]
    fn a_reload_of_access_applies_to_the_next_decision_and_keeps_the_limiter() {
        let policy = Policy::new(access(), GUILD);
        let moderator = member(7, &[MOD_ROLE], false);
        assert_eq!(policy.can_kick(&moderator), Err(Refusal::NoKickAccess));
        assert_eq!(policy.take_kick(7, 0), Ok(()));
        policy.set_access(Access {
            kick_roles: vec![MOD_ROLE],
            ..access()
        });
        assert_eq!(policy.can_kick(&moderator), Ok(()));
        assert_eq!(policy.take_kick(7, 1), Ok(()));
        assert!(
            matches!(policy.take_kick(7, 2), Err(Refusal::TooManyKicks { .. })),
            "the kicks before the reload still count"
        );
    }
}
