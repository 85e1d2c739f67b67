// Migrations are embedded with `sqlx::migrate!`; rebuild when one is added
// or changed, or a new migration would silently be left out of the binary.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
