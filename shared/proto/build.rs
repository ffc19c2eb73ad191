//! Compiles `proto/` with protox (pure Rust), so no protoc is needed.
use prost::Message;
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "tessera/memory/v1/memory.proto",
    "tessera/payment/v1/payment.proto",
    "tessera/facilitator/v1/facilitator.proto",
    "tessera/pow/v1/pow.proto",
    "tessera/discovery/v1/discovery.proto",
    "tessera/stats/v1/stats.proto",
    "tessera/tools/v1/tools.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("tessera_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    // The public API alone, for reflection on the gateway's port (which
    // must not describe the internal services).
    let mut public = descriptors.clone();
    public
        .file
        .retain(|file| file.package.as_deref() == Some("tessera.memory.v1"));
    std::fs::write(
        out.join("tessera_public_descriptor.bin"),
        public.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
