//! The byte stream under an IMAP session: plain TCP or TLS (rustls, `ring` provider), with
//! writes coalesced until a flush.
//!
//! One enum instead of a boxed trait object keeps async-imap's `Session` concretely typed and
//! lets STARTTLS upgrade a plain stream in place. The write buffer matters for speed: async-imap
//! writes a command as four pieces (tag, space, text, CRLF) and flushes after each command;
//! unbuffered, with `TCP_NODELAY`, every piece is its own system call and its own packet, and
//! wakes the server four times. Buffered, a command line (or an APPEND's literal with the next
//! APPEND's command line) leaves in one write. Bodies larger than the buffer bypass it without
//! a copy. Every read and write passes the [`ByteGuard`], which bounds how long the server may
//! keep us waiting and what it can make us hold.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, BufWriter, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, ClientConfig, pki_types::ServerName};

use super::guard::{ByteGuard, ImapLimits};

/// Enough for any command line; message bodies are usually larger and go straight through.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

#[derive(Debug)]
pub struct ImapStream {
    io: BufWriter<Transport>,
    /// The server closed the connection: a read returned end of stream.
    closed_by_server: bool,
    guard: ByteGuard,
}

#[derive(Debug)]
enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl ImapStream {
    pub fn plain(tcp: TcpStream, limits: ImapLimits) -> Self {
        Self::over(Transport::Plain(tcp), limits)
    }

    /// Wraps `tcp` in TLS for `host`. Certificates are verified against the system's roots unless
    /// the endpoint explicitly accepts untrusted certificates (design: verified by default).
    pub async fn tls(
        tcp: TcpStream,
        host: &str,
        accept_untrusted: bool,
        limits: ImapLimits,
    ) -> io::Result<Self> {
        let config = tls_config(accept_untrusted)?;
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let stream = TlsConnector::from(config).connect(name, tcp).await?;
        Ok(Self::over(Transport::Tls(Box::new(stream)), limits))
    }

    fn over(transport: Transport, limits: ImapLimits) -> Self {
        ImapStream {
            io: BufWriter::with_capacity(WRITE_BUFFER_BYTES, transport),
            closed_by_server: false,
            guard: ByteGuard::new(limits),
        }
    }

    /// The limits this stream enforces (a STARTTLS upgrade keeps them).
    pub fn limits(&self) -> ImapLimits {
        *self.guard.limits()
    }

    /// Whether a read found the end of the stream. async-imap ends a command's response stream
    /// quietly at that point (no error), so this is how an answer cut short is told from a
    /// complete one without another round trip.
    pub fn closed_by_server(&self) -> bool {
        self.closed_by_server
    }

    /// The plain TCP stream, for a STARTTLS upgrade; `None` if this one is already TLS. Called
    /// after the STARTTLS command was flushed, so the write buffer is empty.
    pub fn into_plain(self) -> Option<TcpStream> {
        match self.io.into_inner() {
            Transport::Plain(tcp) => Some(tcp),
            Transport::Tls(_) => None,
        }
    }
}

fn tls_config(accept_untrusted: bool) -> io::Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?;
    let config = if accept_untrusted {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(system_roots())
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "could not load a system CA certificate");
    }
    roots.add_parsable_certificates(found.certs);
    roots
}

/// Used only when an endpoint says `accept_untrusted_certs`: the connection is still encrypted
/// and signatures are still checked, but the certificate chain and name are not.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(error) = this.guard.failed() {
            return Poll::Ready(Err(error));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Pending => this.guard.poll_waiting(cx).map(Err),
            Poll::Ready(Ok(())) if buf.filled().len() == before => {
                if buf.remaining() > 0 {
                    this.closed_by_server = true;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(())) => {
                if let Err(error) = this.guard.received(&buf.filled()[before..]) {
                    // Not handed on: async-imap never sees (nor buffers) what broke a limit.
                    buf.set_filled(before);
                    return Poll::Ready(Err(error));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(waiting_on(&mut this.guard, cx, |cx| {
            Pin::new(&mut this.io).poll_write(cx, buf)
        }))?;
        this.guard.wrote();
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(waiting_on(&mut this.guard, cx, |cx| {
            Pin::new(&mut this.io).poll_flush(cx)
        }))?;
        this.guard.moved();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        waiting_on(&mut this.guard, cx, |cx| {
            Pin::new(&mut this.io).poll_shutdown(cx)
        })
    }
}

/// Polls a write-side operation; while the server does not take our bytes, the guard's clocks
/// run as they do while we wait for an answer.
fn waiting_on<T>(
    guard: &mut ByteGuard,
    cx: &mut Context<'_>,
    operation: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<T>>,
) -> Poll<io::Result<T>> {
    match operation(cx) {
        Poll::Pending => guard.poll_waiting(cx).map(Err),
        ready => ready,
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
