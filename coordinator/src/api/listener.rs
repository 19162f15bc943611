//! The socket `mailfleet serve` answers on: plain HTTP, or HTTPS with rustls (the `ring`
//! provider) when given a certificate and its key. TLS handshakes run in their own tasks, so
//! a slow client never holds up the next connection.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::server::TlsStream;

use crate::error::CliError;

/// A handshake that has not finished by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Tls(TlsAcceptor);

impl Tls {
    /// The certificate chain and private key, both PEM.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, CliError> {
        let invalid = |path: &Path, e: &dyn std::fmt::Display| {
            CliError::Invalid(format!("{}: {e}", path.display()))
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| invalid(cert, &e))?;
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| invalid(key, &e))?;
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|builder| {
                builder
                    .with_no_client_auth()
                    .with_single_cert(chain, key_der)
            })
            .map_err(|e| invalid(cert, &e))?;
        Ok(Tls(TlsAcceptor::from(Arc::new(config))))
    }
}

/// Binds `listen` and serves `app` in the background until the handle is aborted.
pub async fn serve(
    listen: SocketAddr,
    tls: Option<Tls>,
    app: Router,
) -> Result<JoinHandle<()>, CliError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| CliError::Invalid(format!("--listen {listen}: {e}")))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("serving {scheme}://{listen}/api/v1");
    Ok(tokio::spawn(async move {
        let served = match tls {
            None => axum::serve(listener, app).await,
            Some(Tls(acceptor)) => {
                axum::serve(TlsListener::start(listener, acceptor, listen), app).await
            }
        };
        if let Err(error) = served {
            tracing::error!(%error, "the HTTP server stopped");
        }
    }))
}

/// Connections whose TLS handshake finished, for axum.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    fn start(listener: TcpListener, acceptor: TlsAcceptor, local: SocketAddr) -> Self {
        let (sender, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                    if let Ok(Ok(stream)) = handshake.await {
                        let _ = sender.send((stream, peer)).await;
                    }
                });
            }
        });
        TlsListener { ready, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task never ends while this listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
