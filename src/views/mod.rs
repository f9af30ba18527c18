//! Screens of the app, one module per screen.

pub mod case;
pub mod enrol;
pub mod guide;
pub mod home;
pub mod items;
pub mod outbox;
pub mod receipt;
pub mod town;
