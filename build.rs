// Rebuild when a migration is added or changed: sqlx::migrate! embeds them
// at compile time (the build script sqlx documents for this).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
