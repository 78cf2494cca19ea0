//! The rate table: what each model's work costs. Operators change it with `tally rate set`;
//! reservations may give `units` and `model` and let the table price them.

use crate::clock::Millis;
use crate::db::{Store, StoreError};
use app::domain::{Modality, Rate};

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
    #[tracing::instrument(skip_all)]
    pub async fn set_rate(&self, rate: &Rate, now: Millis) -> Result<(), StoreError> {
        sqlx::query(
            r#"
            INSERT INTO rates (model, label, modality, millicredits, updated_at)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (model)
            DO UPDATE SET label = excluded.label, modality = excluded.modality,
                millicredits = excluded.millicredits, updated_at = excluded.updated_at
            "#,
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
    #[tracing::instrument(skip_all)]
    pub async fn rates(&self) -> Result<Vec<Rate>, StoreError> {
        let rows = sqlx::query_as::<_, RateRow>(
            r#"
            SELECT model, label, modality, millicredits
            FROM rates
            ORDER BY modality, millicredits, model
            "#,
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Rate::from).collect())
    }

    /// One model's rate.
    #[tracing::instrument(skip_all)]
    pub async fn rate(&self, model: &str) -> Result<Option<Rate>, StoreError> {
        let row = sqlx::query_as::<_, RateRow>(
            r#"
            SELECT model, label, modality, millicredits
            FROM rates
            WHERE model = $1
            "#,
        )
        .bind(model)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(Rate::from))
    }
}

/// A `rates` row; the modality is parsed as it is read.
#[derive(sqlx::FromRow)]
struct RateRow {
    model: String,
    label: String,
    #[sqlx(try_from = "String")]
    modality: Modality,
    millicredits: i64,
}

impl From<RateRow> for Rate {
    fn from(row: RateRow) -> Self {
        Rate {
            model: row.model,
            label: row.label,
            modality: row.modality,
            millicredits: row.millicredits,
        }
    }
}
