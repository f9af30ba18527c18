//! The Bianmin app: village-agent and town-tablet screens over the engine.
//!
//! `app` wires services and launches the window, `views/` holds screens, `components/` reusable pieces.

pub mod app;
pub mod components;
pub mod views;
