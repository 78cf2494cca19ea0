//! Saved cards, kept in the database so that showing them costs no call to the provider.
//!
//! A workspace's cards are read from Stripe when they can have changed — a card event
//! (`payment_method.attached`, `.detached`, `.updated`, `customer.updated` for the default),
//! a finished checkout, a saved Auto-reload setting — and on the first view after none has
//! been stored; a page view otherwise reads the stored copy. Each read is stamped with the
//! moment it started, and a read older than the stored one is not applied, so two reads that
//! cross never leave the older answer behind.

use super::gateway::CardOnFile;
use super::{Payments, PaymentsError};
use crate::clock::Millis;
use crate::db::{Reads, Store, StoreError};
use app::domain::WorkspaceId;
use sqlx::FromRow;

#[derive(FromRow)]
struct CardRow {
    id: String,
    brand: String,
    last4: String,
    exp_month: i64,
    exp_year: i64,
    is_default: i64,
}

impl From<CardRow> for CardOnFile {
    fn from(row: CardRow) -> Self {
        CardOnFile {
            id: row.id,
            brand: row.brand,
            last4: row.last4,
            exp_month: u32::try_from(row.exp_month).unwrap_or(0),
            exp_year: u32::try_from(row.exp_year).unwrap_or(0),
            is_default: row.is_default == 1,
        }
    }
}

/// What the database holds of a workspace's cards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredCards {
    /// The workspace has no payment-provider customer yet, so no card.
    NoCustomer,
    /// The customer's cards were never read from the provider.
    NeverRead { customer_id: String },
    /// The cards as last read (the default first).
    Read(Vec<CardOnFile>),
}

#[derive(FromRow)]
struct WorkspaceCardRow {
    customer_id: String,
    read_at: Option<i64>,
    id: Option<String>,
    brand: Option<String>,
    last4: Option<String>,
    exp_month: Option<i64>,
    exp_year: Option<i64>,
    is_default: Option<i64>,
}

/// Whether a read of a customer's cards was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardsStored {
    Stored,
    /// A read that started later was stored first; this one was dropped.
    Stale,
}

impl Store {
    /// Replaces the customer's stored cards with a read that started at `read_at`, unless a
    /// later read is stored already. The read's row is written first, so concurrent
    /// replacements of one customer wait for each other on it.
    #[tracing::instrument(skip_all)]
    pub async fn replace_saved_cards(
        &self,
        customer_id: &str,
        cards: &[CardOnFile],
        read_at: Millis,
    ) -> Result<CardsStored, StoreError> {
        let mut tx = self.pool().begin().await?;
        let claimed = sqlx::query(
            r#"
            INSERT INTO saved_card_reads (customer_id, read_at)
            VALUES ($1, $2)
            ON CONFLICT (customer_id)
            DO UPDATE SET read_at = excluded.read_at
            WHERE saved_card_reads.read_at <= excluded.read_at
            "#,
        )
        .bind(customer_id)
        .bind(read_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            return Ok(CardsStored::Stale);
        }
        sqlx::query("DELETE FROM saved_cards WHERE customer_id = $1")
            .bind(customer_id)
            .execute(&mut *tx)
            .await?;
        for (position, card) in cards.iter().enumerate() {
            sqlx::query(
                r#"
                INSERT INTO saved_cards (customer_id, id, brand, last4, exp_month, exp_year,
                    is_default, position)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                "#,
            )
            .bind(customer_id)
            .bind(&card.id)
            .bind(&card.brand)
            .bind(&card.last4)
            .bind(i64::from(card.exp_month))
            .bind(i64::from(card.exp_year))
            .bind(i64::from(card.is_default))
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(CardsStored::Stored)
    }
}

impl Payments {
    /// The workspace's saved cards from what the store holds for it: the stored copy, or a
    /// first read from the provider, which is then stored (so the caller holds no
    /// connection meanwhile).
    pub async fn cards_from(&self, stored: StoredCards) -> Result<Vec<CardOnFile>, PaymentsError> {
        match stored {
            StoredCards::NoCustomer => Ok(Vec::new()),
            StoredCards::NeverRead { customer_id } => {
                self.refresh_cards_of_customer(&customer_id).await
            }
            StoredCards::Read(cards) => Ok(cards),
        }
    }

    /// Reads the workspace's cards from the provider again and stores them.
    #[tracing::instrument(skip_all)]
    pub async fn refresh_cards(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<CardOnFile>, PaymentsError> {
        match self.store().stripe_customer(workspace).await? {
            Some(customer) => self.refresh_cards_of_customer(&customer).await,
            None => Ok(Vec::new()),
        }
    }

    /// Reads a customer's cards from the provider and stores them (unless a later read won).
    #[tracing::instrument(skip_all)]
    pub async fn refresh_cards_of_customer(
        &self,
        customer_id: &str,
    ) -> Result<Vec<CardOnFile>, PaymentsError> {
        let read_at = self.now();
        let cards = self.gateway().cards(customer_id).await?;
        self.store()
            .replace_saved_cards(customer_id, &cards, read_at)
            .await?;
        Ok(cards)
    }
}

/// The reads a page makes on one connection.
impl Reads {
    /// The workspace's customer and its stored cards, in one statement (a Billing page view
    /// reads them on every visit).
    #[tracing::instrument(skip_all)]
    pub async fn stored_cards_of(
        &mut self,
        workspace: &WorkspaceId,
    ) -> Result<StoredCards, StoreError> {
        let rows: Vec<WorkspaceCardRow> = sqlx::query_as(
            r#"
            SELECT c.customer_id, r.read_at,
                s.id, s.brand, s.last4, s.exp_month, s.exp_year, s.is_default
            FROM stripe_customers c
            LEFT JOIN saved_card_reads r ON r.customer_id = c.customer_id
            LEFT JOIN saved_cards s ON s.customer_id = r.customer_id
            WHERE c.workspace_id = $1
            ORDER BY s.position
            "#,
        )
        .bind(workspace.as_str())
        .fetch_all(self.conn())
        .await?;
        let Some(first) = rows.first() else {
            return Ok(StoredCards::NoCustomer);
        };
        if first.read_at.is_none() {
            return Ok(StoredCards::NeverRead {
                customer_id: first.customer_id.clone(),
            });
        }
        let cards = rows
            .into_iter()
            .filter_map(|row| {
                Some(CardRow {
                    id: row.id?,
                    brand: row.brand?,
                    last4: row.last4?,
                    exp_month: row.exp_month?,
                    exp_year: row.exp_year?,
                    is_default: row.is_default?,
                })
            })
            .map(CardOnFile::from)
            .collect();
        Ok(StoredCards::Read(cards))
    }
}
