// The migrations are embedded by `sqlx::migrate!`, which cargo does not track: rebuild when they change.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
