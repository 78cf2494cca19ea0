//! The rate table: what each model's work costs. Operators change it with `tally rate set`;
//! reservations may give `units` and `model` and let the table price them.

use crate::clock::Millis;
use crate::db::{Store, StoreError};
use app::domain::{Modality, Rate};
use sqlx::Row;

/// The demo's models and their rates (thousandths of a credit per rate unit).
pub const DEMO_RATES: &[(&str, &str, Modality, i64)] = &[
    ("atlas-text-mini", "Atlas Text Mini", Modality::Text, 250),
    (
        "atlas-text-large",
        "Atlas Text Large",
        Modality::Text,
        1_500,
    ),
    ("echo-transcribe", "Echo Transcribe", Modality::Text, 800),
    ("lumen-image-2", "Lumen Image 2", Modality::Image, 40_000),
    (
        "lumen-image-2-hd",
        "Lumen Image 2 HD",
        Modality::Image,
        90_000,
    ),
    ("reel-video-1", "Reel Video 1", Modality::Video, 12_500),
];

impl Store {
    /// Creates or changes a model's rate.
    pub async fn set_rate(&self, rate: &Rate, now: Millis) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO rates (model, label, modality, millicredits, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (model) DO UPDATE SET label = excluded.label, modality = excluded.modality, millicredits = excluded.millicredits, updated_at = excluded.updated_at",
        )
        .bind(&rate.model)
        .bind(&rate.label)
        .bind(rate.modality.as_str())
        .bind(rate.millicredits)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every rate, by modality then model.
    pub async fn rates(&self) -> Result<Vec<Rate>, StoreError> {
        let rows = sqlx::query("SELECT model, label, modality, millicredits FROM rates ORDER BY modality, millicredits, model")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(rate_from_row).collect()
    }

    /// One model's rate.
    pub async fn rate(&self, model: &str) -> Result<Option<Rate>, StoreError> {
        let row =
            sqlx::query("SELECT model, label, modality, millicredits FROM rates WHERE model = $1")
                .bind(model)
                .fetch_optional(self.pool())
                .await?;
        row.as_ref().map(rate_from_row).transpose()
    }
}

fn rate_from_row(row: &sqlx::any::AnyRow) -> Result<Rate, StoreError> {
    let modality: String = row.try_get("modality")?;
    Ok(Rate {
        model: row.try_get("model")?,
        label: row.try_get("label")?,
        modality: Modality::parse(&modality).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        millicredits: row.try_get("millicredits")?,
    })
}
