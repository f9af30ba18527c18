//! Bianmin app entry point: only launches the UI (see `app.rs`).

use bianmin::app;

fn main() {
    app::launch();
}
