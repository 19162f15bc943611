//! Real Dovecot servers on loopback ports, one per test, gone when dropped.
//!
//! Each server gets its own directory (config from `deploy/dev/dovecot.conf.template`, users,
//! mail, logs) and its own free port, so tests run in parallel without seeing each other and
//! without touching the system's Dovecot.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TEMPLATE: &str = include_str!("../../deploy/dev/dovecot.conf.template");
const DOVECOT: &str = "/usr/sbin/dovecot";

/// Personal-namespace layout: Dovecot's usual one, or the `INBOX.` prefix with `.` separator of
/// Cyrus and Courier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    #[default]
    Default,
    CyrusLike,
}

#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// (login, password) pairs.
    pub users: Vec<(String, String)>,
    /// A master user: `user*master` logs in as `user` with the master's password.
    pub master: Option<(String, String)>,
    pub layout: Layout,
    /// Also serve TLS (STARTTLS on the main port, implicit TLS on [`DovecotServer::tls_port`])
    /// with a fresh self-signed certificate for `localhost` / `127.0.0.1`.
    pub tls: bool,
    /// Dovecot settings appended to the template (limits, plugins, capabilities a test needs).
    pub extra_config: String,
    /// Also accept OAuth2 bearer tokens (XOAUTH2, OAUTHBEARER), validated by introspection.
    pub oauth2: Option<OAuth2Validation>,
}

/// How Dovecot's `oauth2` passdb checks a token: RFC 7662 introspection (`POST token=…`) at
/// `introspection_url`, whose `username` must match the login and `active` must be true.
#[derive(Debug, Clone)]
pub struct OAuth2Validation {
    pub introspection_url: String,
    pub audience: TokenAudience,
}

/// Which logins one token may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAudience {
    /// The token's username is the mailbox (Google's delegated tokens).
    Mailbox,
    /// Any mailbox of the token username's domain (an Exchange Online app-only token serves
    /// every mailbox of the tenant): Dovecot compares only the domains (`username_format=%d`).
    Domain,
}

impl StartOptions {
    pub fn users(users: &[(&str, &str)]) -> Self {
        StartOptions {
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    pub fn with_master(mut self, login: &str, password: &str) -> Self {
        self.master = Some((login.to_owned(), password.to_owned()));
        self
    }

    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    pub fn with_tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Also accepts OAuth2 tokens, checked at `introspection_url` (see
    /// [`crate::identity::IdentityProvider::introspection_url`]).
    pub fn with_oauth2(mut self, introspection_url: &str, audience: TokenAudience) -> Self {
        self.oauth2 = Some(OAuth2Validation {
            introspection_url: introspection_url.to_owned(),
            audience,
        });
        self
    }

    /// Appends Dovecot settings to the configuration.
    pub fn with_config(mut self, settings: &str) -> Self {
        self.extra_config.push_str(settings);
        self.extra_config.push('\n');
        self
    }
}

pub struct DovecotServer {
    port: u16,
    tls_port: Option<u16>,
    base: PathBuf,
    process: Child,
    // Held for its Drop: removes the server's directory.
    _dir: tempfile::TempDir,
}

impl DovecotServer {
    /// Starts a server and waits for its greeting.
    pub fn start(options: StartOptions) -> std::io::Result<Self> {
        let mut last_error = None;
        for _ in 0..5 {
            match Self::try_start(&options) {
                Ok(server) => return Ok(server),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("dovecot did not start")))
    }

    fn try_start(options: &StartOptions) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("mailfleet-dovecot-")
            .tempdir()?;
        let base = dir.path().to_path_buf();
        // Dovecot's unprivileged processes must reach the mail and run directories.
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755))?;
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(base.join(sub))?;
        }
        std::fs::set_permissions(base.join("mail"), std::fs::Permissions::from_mode(0o777))?;
        let port = free_port()?;
        let tls_port = if options.tls {
            make_certificate(&base)?;
            Some(free_port()?)
        } else {
            None
        };
        write_config(&base, port, tls_port, options)?;
        let process = spawn(&base)?;
        let mut server = DovecotServer {
            port,
            tls_port,
            base,
            process,
            _dir: dir,
        };
        server.wait_for_greeting()?;
        Ok(server)
    }

    fn wait_for_greeting(&mut self) -> std::io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.process.try_wait()? {
                return Err(self.startup_error(&format!("dovecot exited with {status}")));
            }
            if let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let mut greeting = [0u8; 4];
                use std::io::Read;
                let mut stream = stream;
                stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                if stream.read_exact(&mut greeting).is_ok() && &greeting == b"* OK" {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(self.startup_error("no greeting within 20 s"))
    }

    fn startup_error(&self, what: &str) -> std::io::Error {
        let log = std::fs::read_to_string(self.base.join("dovecot.log")).unwrap_or_default();
        let tail: Vec<&str> = log
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        std::io::Error::other(format!("{what}; dovecot.log:\n{}", tail.join("\n")))
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("imap://127.0.0.1:{}", self.port)
    }

    /// The implicit-TLS port, when started `with_tls`.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    pub fn base_dir(&self) -> &Path {
        &self.base
    }

    /// Stops the server as an administrator's restart does (SIGTERM to the master, which ends
    /// every IMAP process: clients see their connections drop), keeping its mail and port.
    pub fn stop(&mut self) {
        self.stop_processes();
    }

    /// Starts a [`DovecotServer::stop`]ped server again on the same port with the same mail
    /// and waits for its greeting.
    pub fn start_again(&mut self) -> std::io::Result<()> {
        // The port may linger a moment after the old master exits; a new master that cannot
        // bind exits, so try a few times.
        let mut last = None;
        for _ in 0..20 {
            self.process = spawn(&self.base)?;
            match self.wait_for_greeting() {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
            self.stop_processes();
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("dovecot did not start again")))
    }

    /// SIGTERM lets the master stop its children; then make sure nothing is left.
    fn stop_processes(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.process.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.process.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = Command::new("pkill")
            .arg("-KILL")
            .arg("-f")
            .arg(self.base.as_os_str())
            .status();
    }
}

/// The Dovecot master for the configuration in `base`, in the foreground (its child here).
fn spawn(base: &Path) -> std::io::Result<Child> {
    Command::new(DOVECOT)
        .arg("-F")
        .arg("-c")
        .arg(base.join("dovecot.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            std::io::Error::other(format!(
                "cannot run {DOVECOT}: {e} (run deploy/dev/install-deps.sh)"
            ))
        })
}

impl Drop for DovecotServer {
    fn drop(&mut self) {
        self.stop_processes();
    }
}

/// The template with this server's values filled in; also used by `deploy/dev/dovecot.sh`.
pub fn render_config(base: &Path, port: u16, tls_port: Option<u16>, layout: Layout) -> String {
    let (prefix, separator) = match layout {
        Layout::Default => ("", "/"),
        Layout::CyrusLike => ("INBOX.", "."),
    };
    let (ssl, ssl_files) = match tls_port {
        Some(_) => (
            "yes",
            format!(
                "ssl_cert = <{0}/cert.pem\nssl_key = <{0}/key.pem",
                base.display()
            ),
        ),
        None => ("no", String::new()),
    };
    TEMPLATE
        .replace("@SSL_FILES@", &ssl_files)
        .replace("@SSL@", ssl)
        .replace("@TLS_PORT@", &tls_port.unwrap_or(0).to_string())
        .replace("@BASE@", &base.display().to_string())
        .replace("@PORT@", &port.to_string())
        .replace("@PREFIX@", prefix)
        .replace("@SEPARATOR@", separator)
}

/// A self-signed certificate for localhost/127.0.0.1, made with the openssl command.
fn make_certificate(base: &Path) -> std::io::Result<()> {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(base.join("key.pem"))
        .arg("-out")
        .arg(base.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(std::io::Error::other(
            "openssl could not make a test certificate",
        ));
    }
    std::fs::set_permissions(base.join("key.pem"), std::fs::Permissions::from_mode(0o644))
}

fn write_config(
    base: &Path,
    port: u16,
    tls_port: Option<u16>,
    options: &StartOptions,
) -> std::io::Result<()> {
    let oauth2 = match &options.oauth2 {
        Some(validation) => oauth2_config(base, validation)?,
        None => String::new(),
    };
    std::fs::write(
        base.join("dovecot.conf"),
        render_config(base, port, tls_port, options.layout) + &oauth2 + &options.extra_config,
    )?;
    let passwd = |entries: &[(String, String)]| {
        entries
            .iter()
            .map(|(user, password)| format!("{user}:{{PLAIN}}{password}\n"))
            .collect::<String>()
    };
    std::fs::write(base.join("users"), passwd(&options.users))?;
    std::fs::write(base.join("masters"), passwd(options.master.as_slice()))?;
    Ok(())
}

/// The `oauth2` passdb (after the password ones, for XOAUTH2 and OAUTHBEARER only) and its
/// settings file. No auth cache: a revoked token is refused at the next login.
fn oauth2_config(base: &Path, validation: &OAuth2Validation) -> std::io::Result<String> {
    let username_format = match validation.audience {
        TokenAudience::Mailbox => "%Lu",
        TokenAudience::Domain => "%Ld",
    };
    let settings = base.join("oauth2.conf.ext");
    std::fs::write(
        &settings,
        format!(
            "introspection_url = {}\nintrospection_mode = post\nusername_attribute = username\n\
             username_format = {username_format}\nactive_attribute = active\n\
             active_value = true\ntimeout_msecs = 10000\n",
            validation.introspection_url
        ),
    )?;
    Ok(format!(
        "auth_mechanisms = plain login xoauth2 oauthbearer\n\
         passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {}\n}}\n",
        settings.display()
    ))
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
