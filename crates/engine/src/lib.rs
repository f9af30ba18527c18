//! The Bianmin engine: everything the app and the agent CLI share, with no UI and no direct network access.
//!
//! `catalog` is the item list with service guides, `validate` checks what residents give us,
//! `case` is the case model and its lifecycle, `deadline` counts working days, `number` mints
//! case numbers offline.

pub mod case;
pub mod catalog;
pub mod deadline;
pub mod number;
pub mod outbox;
pub mod receipt;
pub mod sync;
pub mod transport;
pub mod validate;
