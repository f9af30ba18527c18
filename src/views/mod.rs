//! Screens of the app, one module per screen (a folder where a screen has parts).

pub mod case;
pub mod enrol;
pub mod guide;
pub mod home;
pub mod items;
pub mod outbox;
pub mod receipt;
pub mod town;
