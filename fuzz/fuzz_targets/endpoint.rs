//! Endpoint URLs and admin login formats. A URL that parses has a canonical form that parses to
//! the same endpoint; a password typed into a URL never shows in the error; every admin format
//! renders a login that names both the admin and the user.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailfleet_shared::endpoint::{AdminFormat, Endpoint, LoginMethod};

const FORMATS: [AdminFormat; 5] = [
    AdminFormat::Exchange,
    AdminFormat::Dovecot,
    AdminFormat::Mirapoint,
    AdminFormat::Courier,
    AdminFormat::Cyrus,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Endpoint::from_url(text) {
        Ok(endpoint) => {
            let canonical = endpoint.url();
            let again = Endpoint::from_url(&canonical)
                .unwrap_or_else(|e| panic!("canonical URL {canonical:?} refused: {e}"));
            assert_eq!(again, endpoint);
            assert_eq!(again.url(), canonical);
        }
        Err(error) => {
            if let Some(password) = typed_password(text) {
                let error = error.to_string();
                if without_scheme_names(&error).contains(password) {
                    // Text that only spells the password out (the error's own words around the
                    // masked URL, which the fuzzer can copy into a password) is the same for
                    // another password of its length; an echoed password is not.
                    let other = text.replacen(password, &"x".repeat(password.chars().count()), 1);
                    let other_error = Endpoint::from_url(&other).err().map(|e| e.to_string());
                    assert_eq!(
                        other_error.as_deref(),
                        Some(error.as_str()),
                        "the password {password:?} shows in {error}"
                    );
                }
            }
        }
    }

    let (admin, user) = text.split_once('\n').unwrap_or((text, "user"));
    for format in FORMATS {
        let login = format.login(admin, user);
        match (&login, format) {
            (LoginMethod::Login { user: login_user }, AdminFormat::Courier) => {
                assert_eq!(login_user, admin)
            }
            (LoginMethod::Login { user: login_user }, _) => {
                assert!(login_user.contains(admin) && login_user.contains(user))
            }
            (LoginMethod::SaslPlain { authzid, authcid }, _) => {
                assert_eq!((authzid.as_str(), authcid.as_str()), (user, admin))
            }
        }
    }
});

/// The `secret` of `scheme://user:secret@host`, when it is long enough to be told apart from
/// the rest of the message.
fn typed_password(text: &str) -> Option<&str> {
    let after_scheme = text.split_once("://")?.1;
    let authority = after_scheme.split(['/', '?', '#']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    let only_there = text.matches(password).count() == 1;
    (password.len() >= 6 && only_there).then_some(password)
}

/// The error without the scheme names its help text lists (`imap://, imap+starttls:// or
/// imaps://`): a password such as `imap+sta` is in that text without having leaked (a finding
/// of this target, kept in its seeds). An echoed password is still found: the URL shown in the
/// error is masked, never removed, and `user:imap+sta@host` holds no scheme name.
fn without_scheme_names(error: &str) -> String {
    ["imap+starttls://", "imaps://", "imap://"]
        .iter()
        .fold(error.to_owned(), |text, scheme| text.replace(scheme, ""))
}
