//! The throughput ceiling for a gRPC unary call on this machine: a bare tonic
//! server that answers with what it was sent.

use std::net::SocketAddr;

use tonic::{Request, Response, Status};

tonic::include_proto!("dialin.bench.v1");

struct Answer;

#[tonic::async_trait]
impl echo_server::Echo for Answer {
    async fn echo(&self, request: Request<EchoMessage>) -> Result<Response<EchoMessage>, Status> {
        Ok(Response::new(request.into_inner()))
    }
}

/// Serves on a free loopback port until the process ends.
pub async fn start() -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(echo_server::EchoServer::new(Answer))
            .serve_with_incoming(incoming),
    );
    Ok(addr)
}
