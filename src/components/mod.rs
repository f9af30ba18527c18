//! Reusable UI pieces shared by several screens.

pub mod corner_editor;
pub mod qr;
pub mod scan_progress;
pub mod top_bar;
pub mod who;
