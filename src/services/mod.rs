//! App services shared by every screen through context: storage, platform paths, search, sync status.

pub mod book;
pub mod keystore;
pub mod platform;
pub mod search;
pub mod sync;
