//! Writes ts/core/abi.ts and the generated tables of docs/core-abi.md from the one definition of
//! the ABI (crate/src/abi): `npm run gen:abi`.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    for (path, text) in entrograd_core::abi::render::files() {
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        if old != text {
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            println!("gen-abi: wrote {}", path.display());
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
