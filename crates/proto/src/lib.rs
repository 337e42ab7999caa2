//! Generated gRPC types for dialin's two services, and the reasons of their errors.

pub mod settings {
    pub mod v1 {
        tonic::include_proto!("dialin.settings.v1");
    }
}

pub mod notifier {
    pub mod v1 {
        tonic::include_proto!("dialin.notifier.v1");
    }
}

pub mod errors {
    pub mod v1 {
        tonic::include_proto!("dialin.errors.v1");
    }
}

/// Encoded `FileDescriptorSet` of every dialin proto (and its imports), for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dialin_descriptor.bin"));

mod redact;
