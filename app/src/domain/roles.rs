use super::kinds::{spelled_enum, UnknownValue};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A person's role in one workspace.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    BillingAdmin,
    Member,
    Guest,
}

spelled_enum!(Role, "role", {
    Owner => "owner",
    Admin => "admin",
    BillingAdmin => "billing_admin",
    Member => "member",
    Guest => "guest",
});

/// Which roles may buy credits, change Auto-reload and grant credits in a workspace.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingManagers {
    /// Owner, admins and billing admins.
    #[default]
    Admins,
    /// The owner alone.
    OwnerOnly,
}

spelled_enum!(BillingManagers, "billing managers policy", {
    Admins => "admins",
    OwnerOnly => "owner_only",
});

impl BillingManagers {
    /// A sentence for members saying who can buy credits.
    pub const fn who_can_buy(self) -> &'static str {
        match self {
            BillingManagers::Admins => {
                "Workspace owners, admins and billing admins can buy credits and manage Auto-reload."
            }
            BillingManagers::OwnerOnly => {
                "Only the workspace owner can buy credits and manage Auto-reload."
            }
        }
    }
}

/// What a member who works in one project with an earmarked pool is shown of the credits.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberView {
    /// The workspace's whole balance, as everyone else sees it.
    #[default]
    Balance,
    /// Only their project's pool: what it has left, never the workspace's balance or history.
    Pool,
}

spelled_enum!(MemberView, "member view", {
    Balance => "balance",
    Pool => "pool",
});

impl Role {
    /// Is this role shown only its project's pool when the workspace says so? Members alone:
    /// the people who manage billing see the whole balance they manage.
    pub const fn sees_only_a_pool(self, view: MemberView) -> bool {
        matches!((self, view), (Role::Member, MemberView::Pool))
    }
}

/// What a person refused by the credit gate can do about it.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryAction {
    BuyCredits,
    ManageAutoReload,
    /// Ask the workspace's billing managers (a one-click request notifies them).
    AskAdmin,
    /// Ask the workspace owner or whoever shared the work.
    AskOwner,
    /// Raise or remove the budget that refused the action (billing managers).
    RaiseBudget,
}

impl RecoveryAction {
    /// What an actor nobody knows (a service acting for no person) is offered.
    pub const FOR_UNKNOWN: &'static [RecoveryAction] = &[RecoveryAction::AskOwner];
}

impl Role {
    /// May this role open the Billing page? Everyone but guests, read-only for members.
    pub const fn can_view_billing(self) -> bool {
        !matches!(self, Role::Guest)
    }

    /// May this role buy credits, manage Auto-reload and grant credits, under `policy`?
    pub const fn can_manage_billing(self, policy: BillingManagers) -> bool {
        matches!(
            (self, policy),
            (Role::Owner, _) | (Role::Admin | Role::BillingAdmin, BillingManagers::Admins)
        )
    }

    /// May this role see, make and revoke the workspace's API keys? Owners only: a key
    /// spends the whole workspace's credits.
    pub const fn can_manage_api_keys(self) -> bool {
        matches!(self, Role::Owner)
    }

    /// May this role run AI actions that spend credits? Billing admins handle money, not
    /// AI work; guests only where something was shared with them (decided per action).
    pub const fn can_spend_credits(self) -> bool {
        matches!(self, Role::Owner | Role::Admin | Role::Member)
    }

    /// What the insufficient-credits answer offers this role: billing managers can buy
    /// credits or manage Auto-reload, members can ask an admin, guests ask the owner or the
    /// person who shared the work with them.
    pub const fn recovery_actions(self, policy: BillingManagers) -> &'static [RecoveryAction] {
        if self.can_manage_billing(policy) {
            &[RecoveryAction::BuyCredits, RecoveryAction::ManageAutoReload]
        } else if matches!(self, Role::Guest) {
            &[RecoveryAction::AskOwner]
        } else {
            &[RecoveryAction::AskAdmin]
        }
    }

    /// What a budget's refusal offers this role: billing managers can raise the budget,
    /// members ask an admin, guests the owner.
    pub const fn budget_recovery(self, policy: BillingManagers) -> &'static [RecoveryAction] {
        if self.can_manage_billing(policy) {
            &[RecoveryAction::RaiseBudget]
        } else if matches!(self, Role::Guest) {
            &[RecoveryAction::AskOwner]
        } else {
            &[RecoveryAction::AskAdmin]
        }
    }

    /// A label for people.
    pub const fn label(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Admin",
            Role::BillingAdmin => "Billing admin",
            Role::Member => "Member",
            Role::Guest => "Guest",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_owners_manage_api_keys() {
        let managers: Vec<Role> = Role::ALL
            .iter()
            .copied()
            .filter(|r| r.can_manage_api_keys())
            .collect();
        assert_eq!(managers, [Role::Owner]);
    }

    #[test]
    fn owners_admins_and_members_spend_credits_billing_admins_and_guests_do_not() {
        let spenders: Vec<_> = Role::ALL
            .iter()
            .filter(|r| r.can_spend_credits())
            .copied()
            .collect();
        assert_eq!(spenders, [Role::Owner, Role::Admin, Role::Member]);
    }

    #[test]
    fn roles_and_policies_read_in_their_own_words() {
        assert_eq!(Role::BillingAdmin.label(), "Billing admin");
        assert_eq!(Role::Guest.label(), "Guest");
        let labels: std::collections::HashSet<_> = Role::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), Role::ALL.len());
        assert!(BillingManagers::OwnerOnly
            .who_can_buy()
            .starts_with("Only the workspace owner"));
        assert!(BillingManagers::Admins
            .who_can_buy()
            .contains("billing admins"));
    }

    #[test]
    fn members_and_guests_never_manage_billing() {
        for policy in BillingManagers::ALL {
            assert!(!Role::Member.can_manage_billing(*policy));
            assert!(!Role::Guest.can_manage_billing(*policy));
            assert!(Role::Owner.can_manage_billing(*policy));
        }
    }

    #[test]
    fn owner_only_policy_excludes_admins_and_billing_admins() {
        assert!(Role::Admin.can_manage_billing(BillingManagers::Admins));
        assert!(Role::BillingAdmin.can_manage_billing(BillingManagers::Admins));
        assert!(!Role::Admin.can_manage_billing(BillingManagers::OwnerOnly));
        assert!(!Role::BillingAdmin.can_manage_billing(BillingManagers::OwnerOnly));
    }

    #[test]
    fn recovery_follows_the_role_and_policy() {
        let admins = BillingManagers::Admins;
        use RecoveryAction::*;
        assert_eq!(
            Role::Owner.recovery_actions(admins),
            [BuyCredits, ManageAutoReload]
        );
        assert_eq!(
            Role::BillingAdmin.recovery_actions(admins),
            [BuyCredits, ManageAutoReload]
        );
        assert_eq!(
            Role::Admin.recovery_actions(BillingManagers::OwnerOnly),
            [AskAdmin]
        );
        assert_eq!(Role::Member.recovery_actions(admins), [AskAdmin]);
        assert_eq!(Role::Guest.recovery_actions(admins), [AskOwner]);
        // As the API spells them.
        assert_eq!(
            serde_json::to_value(ManageAutoReload).unwrap(),
            "manage_auto_reload"
        );
    }

    #[test]
    fn guests_cannot_view_billing() {
        assert!(!Role::Guest.can_view_billing());
        assert!(Role::Member.can_view_billing());
        assert_eq!(Role::parse("billing_admin"), Ok(Role::BillingAdmin));
        assert!(Role::parse("superuser").is_err());
    }
}
