//! The Bianmin engine: everything the app and the agent CLI share, with no UI and no direct network access.
//!
//! `catalog` is the item list with service guides, `validate` checks what residents give us,
//! `case` is the case model and its lifecycle, `deadline` counts working days, `number` mints
//! case numbers offline, `enrolment` is the device's enrolment with the town centre.

pub mod case;
pub mod catalog;
pub mod deadline;
pub mod enrolment;
pub mod form;
pub mod number;
pub mod outbox;
pub mod receipt;
pub mod sync;
pub mod transport;
pub mod validate;
pub mod window;
