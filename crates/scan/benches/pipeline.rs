//! Pipeline benchmark (placeholder while writing).
fn main() {}
