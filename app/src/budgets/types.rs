use crate::billing::{BudgetLine, Viewer};
use serde::{Deserialize, Serialize};

/// Something a new budget can be on, for the form's suggestions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetChoice {
    /// What the form sends: an email, a key's id, a project's name.
    pub value: String,
    /// What people read.
    pub label: String,
}

/// An earmarked pool as the Budgets page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolLine {
    pub id: String,
    /// `project` or `api_key`.
    pub scope: String,
    /// The project, or the key's name.
    pub label: String,
    /// Credits it still keeps for its scope.
    pub remaining: crate::domain::Credits,
    /// Its scope goes on with the shared balance once it is spent.
    pub overflow: bool,
}

/// The Budgets page's data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetsPage {
    pub viewer: Viewer,
    /// Oldest first.
    pub budgets: Vec<BudgetLine>,
    /// Oldest first.
    pub pools: Vec<PoolLine>,
    pub members: Vec<TargetChoice>,
    /// Live keys only.
    pub api_keys: Vec<TargetChoice>,
    /// Projects usage was charged to lately.
    pub projects: Vec<TargetChoice>,
}

/// A new budget as the form sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetForm {
    pub scope: String,
    pub target: String,
    pub period: String,
    pub limit: String,
    pub enforcement: String,
    /// Set for a frequency cap: the action it counts (its limit is then a count of actions).
    pub action: Option<String>,
}

/// A new pool as the form sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolForm {
    /// `project` or `api_key`.
    pub scope: String,
    pub target: String,
    /// What it keeps, in the unit amounts are shown in.
    pub credits: String,
    /// Its scope goes on with the shared balance once it is spent.
    pub overflow: bool,
}
