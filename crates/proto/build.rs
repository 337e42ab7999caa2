//! Compiles `proto/` with protox (pure Rust, no system `protoc`) and writes the
//! descriptor set that server reflection serves.

use std::{env, fs, path::PathBuf};

use prost::Message;

/// Messages that carry a PIN get a hand-written, redacting `Debug` (in `redact.rs`).
const CARRY_A_PIN: &[&str] = &[
    ".dialin.notifier.v1.Conference",
    ".dialin.settings.v1.AssignLicenseResponse",
    ".dialin.settings.v1.AssignLicenseResult",
    ".dialin.settings.v1.ResetPinResponse",
    ".dialin.settings.v1.SetProviderResponse",
    ".dialin.settings.v1.VerifyPinRequest",
];

const PROTOS: &[&str] = &[
    "dialin/settings/v1/settings.proto",
    "dialin/notifier/v1/notifier.proto",
    "dialin/errors/v1/errors.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    // compile_fds emits no rerun-if-changed of its own.
    println!("cargo:rerun-if-changed={}", proto_root.display());
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={}", proto_root.join(proto).display());
    }

    let descriptors = protox::compile(PROTOS, [&proto_root])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // Reflection needs the encoded set; compile_fds does not write it.
    fs::write(out_dir.join("dialin_descriptor.bin"), descriptors.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .skip_debug(CARRY_A_PIN)
        .compile_fds(descriptors)?;
    Ok(())
}
