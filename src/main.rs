//! Bianmin app entry point: launches the Dioxus UI.

fn main() {
    println!("bianmin app: UI not built yet");
}
