//! The files generated from the ABI's one definition (crate/src/abi) are current: ts/core/abi.ts
//! and the tables of docs/core-abi.md. Host only (the wasm tests have no file system).

#![cfg(not(target_arch = "wasm32"))]

use entrograd_core::abi::render::{files, COMMAND};

#[test]
fn generated_files_are_current() {
    for (path, want) in files() {
        let got = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(got == want, "{} is stale: run `{COMMAND}` (it regenerates it from crate/src/abi)", path.display());
    }
}
