//! The Bianmin app: village-agent and town-tablet screens over the engine.
//!
//! `app` wires services and launches the window, `views/` holds screens, `components/` reusable
//! pieces, `capture/` the camera, `services/` storage, platform paths, search and sync status,
//! and `e2e` the end-to-end test mode.

pub mod app;
pub mod capture;
pub mod components;
pub mod e2e;
pub mod services;
pub mod views;
