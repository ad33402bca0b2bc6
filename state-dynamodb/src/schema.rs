//! The table: creating it (migrate) and checking it (connect).
//!
//! One table holds every entry and every lock: partition key `space` (S),
//! sort key `id` (S), on-demand billing, and DynamoDB's TTL reaper on the
//! `ttl` attribute (epoch seconds) so expired entries eventually free their
//! storage. The reaper is only housekeeping: it may run days late, and
//! reads and conditions judge expiry by `exp` themselves.

use std::fmt;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableDescription, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use state_api::StateError;
use tokio::time::{Instant, sleep};

use crate::BACKEND;
use crate::error::Context;
use crate::item::attr;

/// What [`DynamoStore::migrate`](crate::DynamoStore::migrate) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Migration {
    /// The table did not exist and was created.
    pub created_table: bool,
    /// TTL was not enabled on the table and was enabled.
    pub enabled_ttl: bool,
}

impl fmt::Display for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.created_table, self.enabled_ttl) {
            (false, false) => f.write_str("dynamodb: the table is up to date, nothing to do"),
            (true, true) => f.write_str("dynamodb: created the table and enabled TTL on it"),
            (true, false) => f.write_str("dynamodb: created the table"),
            (false, true) => f.write_str("dynamodb: enabled TTL on the existing table"),
        }
    }
}

/// How long migrate waits for a new table to become active. AWS takes
/// seconds to a minute; DynamoDB Local is immediate.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

/// The table as statekit needs it.
pub(crate) struct Table<'a> {
    pub(crate) client: &'a Client,
    pub(crate) name: &'a str,
    pub(crate) timeout: Duration,
}

impl Table<'_> {
    fn cx(&self, operation: &'static str) -> Context<'_> {
        Context { operation, table: self.name, timeout: self.timeout }
    }

    /// Creates the table if needed, waits until it is active, checks its
    /// key schema, and enables TTL if needed. Idempotent, and safe to run
    /// from several processes at once.
    pub(crate) async fn migrate(&self) -> Result<Migration, StateError> {
        let created_table = match self.describe().await? {
            Some(_) => false,
            None => self.create().await?,
        };
        let description = self.wait_until_active().await?;
        check_key_schema(self.name, &description)?;
        let enabled_ttl = self.enable_ttl().await?;
        Ok(Migration { created_table, enabled_ttl })
    }

    /// Checks that the table exists, is active and has statekit's key
    /// schema; sends one `DescribeTable`.
    pub(crate) async fn verify(&self) -> Result<(), StateError> {
        let Some(description) = self.describe().await? else {
            return Err(backend(
                format!(
                    "table {:?} does not exist: create it with DynamoStore::migrate (or `statekit migrate`)",
                    self.name
                ),
                false,
            ));
        };
        check_key_schema(self.name, &description)?;
        match description.table_status() {
            Some(TableStatus::Active | TableStatus::Updating) => Ok(()),
            status => Err(backend(
                format!("table {:?} is not active (status {status:?}): wait, or run migrate", self.name),
                true,
            )),
        }
    }

    /// The table's description, or `None` if it does not exist.
    async fn describe(&self) -> Result<Option<TableDescription>, StateError> {
        match self.client.describe_table().table_name(self.name).send().await {
            Ok(output) => Ok(output.table),
            Err(SdkError::ServiceError(service))
                if matches!(service.err(), DescribeTableError::ResourceNotFoundException(_)) =>
            {
                Ok(None)
            }
            Err(error) => Err(self.cx("describe_table").map(error)),
        }
    }

    /// Creates the table; `false` if someone else created it meanwhile.
    async fn create(&self) -> Result<bool, StateError> {
        let key = |name: &str, key_type| KeySchemaElement::builder().attribute_name(name).key_type(key_type).build();
        let string = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
        };
        let request = self
            .client
            .create_table()
            .table_name(self.name)
            .key_schema(key(attr::SPACE, KeyType::Hash).map_err(invalid_request)?)
            .key_schema(key(attr::ID, KeyType::Range).map_err(invalid_request)?)
            .attribute_definitions(string(attr::SPACE).map_err(invalid_request)?)
            .attribute_definitions(string(attr::ID).map_err(invalid_request)?)
            .billing_mode(BillingMode::PayPerRequest);
        match request.send().await {
            Ok(_) => Ok(true),
            // A concurrent migrate won the race; its table is ours too.
            Err(error) if error.code() == Some("ResourceInUseException") => Ok(false),
            Err(error) => Err(self.cx("create_table").map(error)),
        }
    }

    async fn wait_until_active(&self) -> Result<TableDescription, StateError> {
        let deadline = Instant::now() + ACTIVE_TIMEOUT;
        loop {
            let description = self.describe().await?;
            if let Some(description) = description.filter(|d| d.table_status() == Some(&TableStatus::Active)) {
                return Ok(description);
            }
            if Instant::now() >= deadline {
                return Err(StateError::Timeout { operation: "migrate", after: ACTIVE_TIMEOUT });
            }
            sleep(Duration::from_millis(500)).await;
        }
    }

    /// Enables the TTL reaper on `ttl`; `false` if it already was.
    async fn enable_ttl(&self) -> Result<bool, StateError> {
        let current = self
            .client
            .describe_time_to_live()
            .table_name(self.name)
            .send()
            .await
            .map_err(|e| self.cx("describe_time_to_live").map(e))?;
        let description = current.time_to_live_description();
        let status = description.and_then(|d| d.time_to_live_status());
        let attribute = description.and_then(|d| d.attribute_name());
        match status {
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) if attribute == Some(attr::REAP_AT) => {
                return Ok(false);
            }
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) => {
                return Err(backend(
                    format!(
                        "table {:?} has TTL on attribute {attribute:?}, statekit's is {:?}: \
                         a table has one TTL attribute, so this table cannot be shared that way",
                        self.name,
                        attr::REAP_AT
                    ),
                    false,
                ));
            }
            Some(TimeToLiveStatus::Disabling) => {
                return Err(backend(
                    format!("TTL on table {:?} is being disabled; run migrate again once that is done", self.name),
                    true,
                ));
            }
            _ => {}
        }
        let specification = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(attr::REAP_AT)
            .build()
            .map_err(invalid_request)?;
        match self
            .client
            .update_time_to_live()
            .table_name(self.name)
            .time_to_live_specification(specification)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            // A concurrent migrate enabled it first.
            Err(error) if error.message().is_some_and(|m| m.contains("already enabled")) => Ok(false),
            Err(error) => Err(self.cx("update_time_to_live").map(error)),
        }
    }
}

/// Compares the key schema with statekit's and names every difference.
fn check_key_schema(table: &str, description: &TableDescription) -> Result<(), StateError> {
    let attribute_type = |name: &str| {
        description
            .attribute_definitions()
            .iter()
            .find(|d| d.attribute_name() == name)
            .map_or_else(|| "?".to_owned(), |d| d.attribute_type().as_str().to_owned())
    };
    let key = |key_type: KeyType| {
        description
            .key_schema()
            .iter()
            .find(|k| *k.key_type() == key_type)
            .map(|k| (k.attribute_name().to_owned(), attribute_type(k.attribute_name())))
    };
    let mut differences = Vec::new();
    for (role, key_type, expected) in
        [("partition key", KeyType::Hash, attr::SPACE), ("sort key", KeyType::Range, attr::ID)]
    {
        match key(key_type) {
            Some((name, kind)) if name == expected && kind == "S" => {}
            Some((name, kind)) => {
                differences.push(format!("the {role} is `{name}` ({kind}), expected `{expected}` (S)"))
            }
            None => differences.push(format!("there is no {role}, expected `{expected}` (S)")),
        }
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(backend(
            format!(
                "table {table:?} does not have statekit's key schema: {}; use another table name, \
                 or let migrate create a new table",
                differences.join("; ")
            ),
            false,
        ))
    }
}

fn backend(message: String, retryable: bool) -> StateError {
    StateError::failed(BACKEND, message, retryable)
}

fn invalid_request(error: aws_sdk_dynamodb::error::BuildError) -> StateError {
    StateError::backend(BACKEND, "could not build a table request", false, error)
}
