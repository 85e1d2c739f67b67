//! Organisations and admin tokens.

use uuid::Uuid;

use super::audit::insert_event;
use super::{read, transaction, Result, Store};
use crate::audit::{Action, AuditContext, Target, TargetType};
use crate::time::now_micros;

#[derive(Clone, Debug, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    pub id: Uuid,
    pub name: String,
    pub is_default: bool,
    pub created_at: i64,
}

impl Store {
    /// Creates the default organisation unless one exists; returns it.
    pub async fn ensure_default_org(&self) -> Result<Org> {
        if let Some(org) = self.default_org().await? {
            return Ok(org);
        }
        let org = Org {
            id: Uuid::new_v4(),
            name: "Default organisation".into(),
            is_default: true,
            created_at: now_micros(),
        };
        transaction!(self, |_d, tx| {
            sqlx::query(
                "INSERT INTO orgs (id, name, is_default, created_at) VALUES ($1, $2, TRUE, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(org.id)
            .bind(&org.name)
            .bind(org.created_at)
            .execute(&mut *tx)
            .await?;
        });
        // Another replica may have won the race; read back the winner.
        self.default_org().await?.ok_or(super::StoreError::NotFound)
    }

    async fn default_org(&self) -> Result<Option<Org>> {
        read!(self, |_d, c| {
            Ok(sqlx::query_as(
                "SELECT id, name, is_default, created_at FROM orgs WHERE is_default = TRUE",
            )
            .fetch_optional(&mut *c)
            .await?)
        })
    }

    pub async fn create_org(&self, name: &str, audit: &AuditContext) -> Result<Org> {
        let org = Org {
            id: Uuid::new_v4(),
            name: name.to_owned(),
            is_default: false,
            created_at: now_micros(),
        };
        transaction!(self, |_d, tx| {
            sqlx::query(
                "INSERT INTO orgs (id, name, is_default, created_at) VALUES ($1, $2, FALSE, $3)",
            )
            .bind(org.id)
            .bind(&org.name)
            .bind(org.created_at)
            .execute(&mut *tx)
            .await?;
            if audit.enabled {
                let event = audit
                    .in_org(org.id)
                    .event(Action::OrgCreated)
                    .target(Target::named(
                        TargetType::Org,
                        org.id,
                        org.created_at,
                        &org.name,
                    ));
                insert_event(&mut *tx, &event).await?;
            }
        });
        Ok(org)
    }

    pub async fn list_orgs(&self) -> Result<Vec<Org>> {
        read!(self, |_d, c| {
            Ok(sqlx::query_as(
                "SELECT id, name, is_default, created_at FROM orgs ORDER BY created_at, id",
            )
            .fetch_all(&mut *c)
            .await?)
        })
    }

    pub async fn get_org(&self, id: Uuid) -> Result<Option<Org>> {
        read!(self, |_d, c| {
            Ok(
                sqlx::query_as("SELECT id, name, is_default, created_at FROM orgs WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *c)
                    .await?,
            )
        })
    }

    pub async fn count_admin_tokens(&self) -> Result<i64> {
        read!(self, |_d, c| {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM admin_tokens")
                .fetch_one(&mut *c)
                .await?;
            Ok(n)
        })
    }

    pub async fn insert_admin_token(&self, id: &str, secret_hash: &str) -> Result<()> {
        transaction!(self, |_d, tx| {
            sqlx::query(
                "INSERT INTO admin_tokens (id, secret_hash, created_at) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(secret_hash)
            .bind(now_micros())
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// The stored hash of an admin token, by its visible id.
    pub async fn admin_token_hash(&self, id: &str) -> Result<Option<String>> {
        read!(self, |_d, c| {
            Ok(
                sqlx::query_scalar("SELECT secret_hash FROM admin_tokens WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *c)
                    .await?,
            )
        })
    }
}
