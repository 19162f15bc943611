//! `sqlx::migrate!` embeds `migrations/postgres/` when the crate compiles; cargo must know to
//! compile it again when a migration is added.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
