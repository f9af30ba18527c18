//! The Bianmin app: village-agent and town-tablet screens over the engine.
//!
//! `app` opens the data and launches the window, `route` maps screens to routes, `views/` holds
//! screens, `components/` reusable pieces, `capture/` the camera, `services/` the typed contexts
//! (catalog, book, enrolment, sync), and `e2e` (feature `e2e`) the end-to-end test driver.

pub mod app;
pub mod capture;
pub mod components;
#[cfg(feature = "e2e")]
pub mod e2e;
pub mod route;
pub mod services;
pub mod views;
