use crate::billing::Viewer;
use crate::domain::{Credits, Rate, Role};
use serde::{Deserialize, Serialize};

/// Why an AI action could not run, and what this person can do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Insufficient {
    /// Credits spendable now.
    pub balance: i64,
    /// Credits held by actions in progress.
    pub held: i64,
    pub required: i64,
    /// The credits exist but are held by other actions in progress.
    pub held_back: bool,
    pub role: Role,
    /// `buy_credits`, `manage_auto_reload`, `ask_admin` or `ask_owner`.
    pub actions: Vec<crate::domain::RecoveryAction>,
}

/// Why a budget below the workspace stopped an AI action, and what this person can do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverBudget {
    /// Which budget, what it has left, and when it resets.
    pub message: String,
    /// `raise_budget`, `ask_admin` or `ask_owner`.
    pub actions: Vec<crate::domain::RecoveryAction>,
}

/// The Studio page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudioView {
    pub viewer: Viewer,
    pub rates: Vec<Rate>,
    /// `None` for guests, who see nothing of billing.
    pub balance: Option<Credits>,
}

/// A finished Studio action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    pub model_label: String,
    pub units: i64,
    pub unit_name: String,
    /// Credits held while the work ran.
    pub estimate: i64,
    /// Credits charged for the work actually done.
    pub charged: i64,
    pub balance: i64,
}
