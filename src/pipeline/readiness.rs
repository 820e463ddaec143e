//! One part of `/readyz`: each side contributes checks, the operator listener asks them all.

use std::sync::Arc;

/// `None` when fine, else what is wrong in a few words (`Discord gateway not connected`).
pub type ReadinessCheck = Arc<dyn Fn() -> Option<String> + Send + Sync>;
