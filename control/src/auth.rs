//! The API token: mutating calls must carry `Authorization: Bearer <token>` (the
//! scheme in any case, as RFC 7235 has it). A refusal says where the token is.
//!
//! The token comes from the config file, or is generated on first start and kept in the
//! state directory (mode 0600) so it survives restarts and scripts can read it.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const TOKEN_FILE: &str = "token";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is empty; delete it to have a new token generated")]
    EmptyFile(PathBuf),
}

/// Where the token came from, so startup can say so.
#[derive(Debug, PartialEq, Eq)]
pub enum Origin {
    Config,
    File(PathBuf),
    Generated(PathBuf),
}

#[derive(Clone, Debug)]
pub struct Token {
    secret: String,
    /// Where an operator finds it, for the messages of refused calls.
    location: String,
}

impl Token {
    pub fn new(secret: impl Into<String>) -> Self {
        Token {
            secret: secret.into(),
            location: "the control plane's configuration".into(),
        }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Where the token is, as the refusals say it.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn from(secret: String, origin: &Origin) -> Token {
        let location = match origin {
            Origin::Config => "the `token` key of the config file".to_owned(),
            Origin::File(path) | Origin::Generated(path) => {
                format!("{} (printed when it was generated)", path.display())
            }
        };
        Token { secret, location }
    }

    /// The configured token, else the one stored in `state_dir`, else a new one
    /// written there.
    pub fn load_or_create(
        configured: Option<String>,
        state_dir: &Path,
    ) -> Result<(Token, Origin), AuthError> {
        if let Some(secret) = configured {
            return Ok((Token::from(secret, &Origin::Config), Origin::Config));
        }
        let path = state_dir.join(TOKEN_FILE);
        let io = |source| AuthError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) if text.trim().is_empty() => Err(AuthError::EmptyFile(path)),
            Ok(text) => {
                let origin = Origin::File(path);
                Ok((Token::from(text.trim().to_owned(), &origin), origin))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                std::fs::create_dir_all(state_dir).map_err(io)?;
                let secret = random_hex(32).map_err(io)?;
                // create_new: never clobber a token another instance just wrote.
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io)?;
                writeln!(file, "{secret}").map_err(io)?;
                let origin = Origin::Generated(path);
                Ok((Token::from(secret, &origin), origin))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Check an `Authorization` header value; a refusal says what was wrong and where
    /// the token is. Compares in constant time so response timing does not reveal how
    /// much of a guess was right.
    pub fn check(&self, header: Option<&str>) -> Result<(), String> {
        let refuse = |what: &str| Err(format!("{what}; the API token is in {}", self.location));
        let Some(header) = header else {
            return refuse("this call needs an Authorization: Bearer <token> header");
        };
        // RFC 7235: `auth-scheme 1*SP token68`, the scheme case-insensitive.
        let presented = header
            .trim_start()
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, rest)| rest);
        let Some(presented) = presented else {
            return refuse("the Authorization header must be 'Bearer <token>'");
        };
        let expected = self.secret.as_bytes();
        let presented = presented.trim().as_bytes();
        let differs = expected.len() != presented.len()
            || expected
                .iter()
                .zip(presented)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                != 0;
        if differs {
            return refuse("invalid API token");
        }
        Ok(())
    }
}

fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let (first, origin) = Token::load_or_create(None, &state).unwrap();
        let path = state.join(TOKEN_FILE);
        assert_eq!(origin, Origin::Generated(path.clone()));
        assert_eq!(first.secret().len(), 64);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (second, origin) = Token::load_or_create(None, &state).unwrap();
        assert_eq!(origin, Origin::File(path));
        assert_eq!(first.secret(), second.secret());
    }

    #[test]
    fn configured_token_wins_and_no_file_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let (token, origin) = Token::load_or_create(Some("s3cret".into()), dir.path()).unwrap();
        assert_eq!((token.secret(), origin), ("s3cret", Origin::Config));
        assert!(!dir.path().join(TOKEN_FILE).exists());
    }

    #[test]
    fn an_emptied_token_file_is_an_error_not_an_open_door() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TOKEN_FILE), "\n").unwrap();
        let err = Token::load_or_create(None, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("is empty"), "{err}");
    }

    #[test]
    fn headers_are_checked_exactly_and_refusals_say_where_the_token_is() {
        let dir = tempfile::tempdir().unwrap();
        let (token, _) = Token::load_or_create(None, dir.path()).unwrap();
        let secret = token.secret().to_owned();
        let at = format!(
            "; the API token is in {} (printed when it was generated)",
            dir.path().join(TOKEN_FILE).display()
        );
        assert_eq!(token.check(Some(&format!("Bearer {secret}"))), Ok(()));
        // RFC 7235: the scheme is case-insensitive, and more than one space may follow.
        for scheme in ["bearer", "BEARER", "bEaReR"] {
            assert_eq!(token.check(Some(&format!("{scheme}  {secret}"))), Ok(()));
        }
        assert_eq!(
            token.check(None),
            Err(format!(
                "this call needs an Authorization: Bearer <token> header{at}"
            ))
        );
        for wrong in [
            format!("Basic {secret}"),
            format!("Bearer{secret}"),
            "Bearer".into(),
        ] {
            assert_eq!(
                token.check(Some(&wrong)),
                Err(format!(
                    "the Authorization header must be 'Bearer <token>'{at}"
                )),
                "{wrong}"
            );
        }
        for wrong in ["Bearer abd", "Bearer ", &format!("Bearer {secret}x")] {
            assert_eq!(
                token.check(Some(wrong)),
                Err(format!("invalid API token{at}")),
                "{wrong}"
            );
        }
        let configured = Token::load_or_create(Some("s".into()), dir.path())
            .unwrap()
            .0;
        assert_eq!(
            configured.check(Some("Bearer x")),
            Err("invalid API token; the API token is in the `token` key of the config file".into())
        );
    }
}
