//! The parts of an image config that the store keeps in its image record (the config itself
//! is kept whole as a blob, for `inspect`, `history` and `run`).

use chrono::{DateTime, Utc};

use super::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the image config is not valid JSON")]
    Json(#[source] serde_json::Error),
    #[error("the image config has no rootfs.diff_ids")]
    NoDiffIds,
    #[error("a diff id in the image config is not a digest: {0}")]
    BadDiffId(String),
}

pub struct ConfigSummary {
    pub diff_ids: Vec<Digest>,
    pub created: Option<DateTime<Utc>>,
    pub architecture: String,
    pub os: String,
}

impl ConfigSummary {
    pub fn parse(bytes: &[u8]) -> Result<ConfigSummary, ConfigError> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(ConfigError::Json)?;
        let diff_ids = value
            .pointer("/rootfs/diff_ids")
            .and_then(|v| v.as_array())
            .ok_or(ConfigError::NoDiffIds)?
            .iter()
            .map(|d| {
                d.as_str()
                    .and_then(|s| s.parse::<Digest>().ok())
                    .ok_or_else(|| ConfigError::BadDiffId(d.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let text = |key: &str| {
            value
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        Ok(ConfigSummary {
            diff_ids,
            created: value
                .get("created")
                .and_then(|v| v.as_str())
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&Utc)),
            architecture: text("architecture"),
            os: text("os"),
        })
    }
}
