//! Settings from flags and the environment (a flag wins over its variable), with safe defaults
//! so that `serve` runs with nothing configured.

use std::path::{Path, PathBuf};

use crate::auth::{self, AuthSettings};

/// Where the server keeps what it must remember between runs.
#[derive(Clone, Debug, clap::Args)]
pub struct DataArgs {
    /// Directory for local state: the generated JWT secret (and, later, the SQLite database).
    #[arg(long, env = "LEADPING_DATA_DIR", default_value = "leadping-data")]
    pub data_dir: PathBuf,
}

/// Which bearer tokens to trust.
#[derive(Clone, Debug, clap::Args)]
pub struct AuthArgs {
    /// HS256 secret (at least 32 bytes). Without it and without public keys, a random secret is
    /// generated once and kept in the data directory, so `serve` and `token` agree.
    #[arg(long, env = "LEADPING_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PEM files of RSA (RS256) or P-256 (ES256) public keys, comma-separated.
    #[arg(long, env = "LEADPING_JWT_PUBLIC_KEYS", value_delimiter = ',')]
    pub jwt_public_keys: Vec<PathBuf>,
    /// A JWKS file of RSA and P-256 public keys.
    #[arg(long, env = "LEADPING_JWT_JWKS")]
    pub jwt_jwks: Option<PathBuf>,
    /// Required `iss` claim.
    #[arg(long, env = "LEADPING_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim.
    #[arg(long, env = "LEADPING_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
}

/// The HS256 secret in force: the configured one, else the one kept in the data directory
/// (created on first use, readable by its owner only).
pub fn hs256_secret(auth: &AuthArgs, data: &DataArgs) -> anyhow::Result<String> {
    if let Some(secret) = &auth.jwt_secret {
        return Ok(secret.clone());
    }
    secret_in(&data.data_dir)
}

fn secret_in(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(s) => return Ok(s.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let secret = auth::generate_secret()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut f) => {
            std::io::Write::write_all(&mut f, secret.as_bytes())?;
            Ok(secret)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(&path)?.trim().to_string())
        }
        Err(e) => anyhow::bail!("cannot create {}: {e}", path.display()),
    }
}

/// The keys `serve` trusts.
pub fn auth_settings(auth: &AuthArgs, data: &DataArgs) -> anyhow::Result<AuthSettings> {
    let has_public = !auth.jwt_public_keys.is_empty() || auth.jwt_jwks.is_some();
    let hs256_secret = if auth.jwt_secret.is_some() || !has_public {
        Some(hs256_secret(auth, data)?)
    } else {
        None
    };
    Ok(AuthSettings {
        hs256_secret,
        public_key_files: auth.jwt_public_keys.clone(),
        jwks_file: auth.jwt_jwks.clone(),
        issuer: auth.jwt_issuer.clone(),
        audience: auth.jwt_audience.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_secret_is_kept_and_reused() {
        let dir = std::env::temp_dir().join(format!("leadping-config-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = secret_in(&dir).unwrap();
        let second = secret_in(&dir).unwrap();
        assert_eq!(first, second);
        assert!(first.len() >= auth::MIN_SECRET_BYTES);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("jwt-secret"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o077,
                0,
                "the secret file must not be readable by others"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
