//! Reusable UI pieces shared by several screens.

pub mod qr;
pub mod top_bar;
