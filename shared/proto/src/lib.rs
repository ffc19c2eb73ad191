//! Generated messages, clients and servers for every Tessera gRPC API.

/// Encoded `FileDescriptorSet` of all Tessera protos, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tessera_descriptor.bin"));

/// Encoded `FileDescriptorSet` of the public API only (`tessera.memory.v1`,
/// which imports nothing), for reflection on the gateway's port.
pub const PUBLIC_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tessera_public_descriptor.bin"));

pub mod memory {
    pub mod v1 {
        tonic::include_proto!("tessera.memory.v1");
    }
}
pub mod payment {
    pub mod v1 {
        tonic::include_proto!("tessera.payment.v1");
    }
}
pub mod facilitator {
    pub mod v1 {
        tonic::include_proto!("tessera.facilitator.v1");
    }
}
pub mod pow {
    pub mod v1 {
        tonic::include_proto!("tessera.pow.v1");
    }
}
pub mod discovery {
    pub mod v1 {
        tonic::include_proto!("tessera.discovery.v1");
    }
}
pub mod stats {
    pub mod v1 {
        tonic::include_proto!("tessera.stats.v1");
    }
}
pub mod tools {
    pub mod v1 {
        tonic::include_proto!("tessera.tools.v1");
    }
}
