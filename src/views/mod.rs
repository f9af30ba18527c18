//! Screens of the app, one module per screen.

pub mod items;
