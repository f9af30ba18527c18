//! The agent CLI's commands as a library, so tests can share their helpers.

pub mod cases;
pub mod read_id_cmd;
pub mod receipt_cmd;
pub mod scan_cmd;
pub mod sync_cmd;
