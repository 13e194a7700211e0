//! Access tokens (JWT, HS256, short-lived, carry user id and role) and refresh tokens (256 random bits, opaque,
//! stored only as SHA-256).

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{Role, UserId};

/// What an access token asserts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    pub role: Role,
    pub iat: u64,
    pub exp: u64,
}

impl AccessClaims {
    pub fn user_id(&self) -> Result<UserId, TokenError> {
        self.sub.parse().map_err(|_| TokenError::Invalid)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is invalid")]
    Invalid,
}

/// Signs and checks access tokens; knows the token lifetimes.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
}

impl Tokens {
    pub fn new(secret: &SecretString, access_ttl_secs: u64, refresh_ttl_secs: u64) -> Self {
        let key = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        // Clocks of several nodes may drift by a few seconds, not a minute (the crate default).
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            access_ttl_secs,
            refresh_ttl_secs,
        }
    }

    /// A signed access token for the user, valid for `access_ttl_secs` from `now_secs`.
    pub fn issue_access(&self, user: UserId, role: Role, now_secs: u64) -> String {
        let claims = AccessClaims { sub: user.to_string(), role, iat: now_secs, exp: now_secs + self.access_ttl_secs };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation).map(|data| data.claims).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            },
        )
    }
}

/// What a media ticket asserts: this user may fetch this interview's recordings until `exp`. Tickets go in
/// URLs (an `<audio>` element cannot send a bearer header), so they name one interview and live an hour.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MediaClaims {
    /// The interview id.
    sub: String,
    /// The user it was issued to.
    usr: String,
    aud: String,
    exp: u64,
}

const MEDIA_AUDIENCE: &str = "candor-recording";
pub const MEDIA_TICKET_SECS: u64 = 3600;

impl Tokens {
    pub fn issue_media(&self, user: UserId, interview: &str, now_secs: u64) -> String {
        let claims = MediaClaims {
            sub: interview.to_string(),
            usr: user.to_string(),
            aud: MEDIA_AUDIENCE.into(),
            exp: now_secs + MEDIA_TICKET_SECS,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// The user a media ticket for `interview` was issued to.
    pub fn verify_media(&self, ticket: &str, interview: &str) -> Result<UserId, TokenError> {
        let mut validation = self.validation.clone();
        validation.set_audience(&[MEDIA_AUDIENCE]);
        let claims = jsonwebtoken::decode::<MediaClaims>(ticket, &self.decoding, &validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })?;
        if claims.claims.sub != interview {
            return Err(TokenError::Invalid);
        }
        claims.claims.usr.parse().map_err(|_| TokenError::Invalid)
    }
}

/// What a node asserts when it relays a client's signaling to the node that runs the session: the client's
/// address (for rate limits and audit there) and that the request was relayed once already (never again).
/// Signed with the key every node shares; it lives a minute.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RelayClaims {
    /// The client's IP address.
    sub: String,
    aud: String,
    exp: u64,
}

const RELAY_AUDIENCE: &str = "candor-relay";
const RELAY_SECS: u64 = 60;

impl Tokens {
    pub fn issue_relay(&self, client: std::net::IpAddr, now_secs: u64) -> String {
        let claims = RelayClaims { sub: client.to_string(), aud: RELAY_AUDIENCE.into(), exp: now_secs + RELAY_SECS };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// The client address a relaying node vouches for.
    pub fn verify_relay(&self, token: &str) -> Result<std::net::IpAddr, TokenError> {
        let mut validation = self.validation.clone();
        validation.set_audience(&[RELAY_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        let claims = jsonwebtoken::decode::<RelayClaims>(token, &self.decoding, &validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })?;
        claims.claims.sub.parse().map_err(|_| TokenError::Invalid)
    }
}

/// `(token, sha256 hex of token)`: the token goes to the client, the hash to the database.
pub fn new_refresh_token() -> (String, String) {
    let token = format!("rt_{}", random_secret(32));
    let hash = hash_secret(&token);
    (token, hash)
}

/// The sha256 hex of a secret token (refresh tokens, coach invitations): what the database keeps of it.
pub fn hash_secret(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// `bytes` random bytes from the OS, base64url without padding.
pub fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0_u8; bytes];
    OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A TURN credential by the shared-secret convention of coturn's `use-auth-secret` (the "TURN REST API"): the
/// username is `expiry:user`, the password base64(HMAC-SHA1(secret, username)), so the TURN server checks both
/// without asking us, and the credential stops working at `expires_at_secs` (Unix). SHA-1 is the convention's.
pub fn turn_credential(secret: &SecretString, user: UserId, expires_at_secs: u64) -> (String, String) {
    let username = format!("{expires_at_secs}:{user}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.expose_secret().as_bytes());
    let tag = ring::hmac::sign(&key, username.as_bytes());
    (username, base64::engine::general_purpose::STANDARD.encode(tag.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_credential_follows_the_shared_secret_convention() {
        // Computed apart, with Python's hmac module.
        let user: UserId = "0b6f3e1c-2f0e-4c8a-9d55-3f3a4c1e7a10".parse().unwrap();
        let (username, password) = turn_credential(&SecretString::from("north-wind-secret"), user, 1_700_000_000);
        assert_eq!(username, "1700000000:0b6f3e1c-2f0e-4c8a-9d55-3f3a4c1e7a10");
        assert_eq!(password, "cLEthqK3HCAEmsoLtIYW0TSZPWU=");
    }

    fn tokens(secret: &str) -> Tokens {
        Tokens::new(&SecretString::from(secret), 900, 3600)
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let t = tokens("s1");
        let user = UserId::new();
        let claims = t.verify_access(&t.issue_access(user, Role::Coach, now())).unwrap();
        assert_eq!(claims.user_id().unwrap(), user);
        assert_eq!(claims.role, Role::Coach);
    }

    #[test]
    fn a_token_signed_with_another_key_is_invalid() {
        let forged = tokens("attacker").issue_access(UserId::new(), Role::Admin, now());
        assert_eq!(tokens("s1").verify_access(&forged).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn a_relay_token_carries_the_client_address_and_nothing_else() {
        let t = tokens("s1");
        let ip: std::net::IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(t.verify_relay(&t.issue_relay(ip, now())).unwrap(), ip);
        assert_eq!(tokens("attacker").verify_relay(&t.issue_relay(ip, now())).unwrap_err(), TokenError::Invalid);
        assert_eq!(t.verify_relay(&t.issue_relay(ip, now() - 3600)).unwrap_err(), TokenError::Expired);
        // Neither kind of token passes for the other.
        let access = t.issue_access(UserId::new(), Role::Admin, now());
        assert_eq!(t.verify_relay(&access).unwrap_err(), TokenError::Invalid);
        assert!(t.verify_access(&t.issue_relay(ip, now())).is_err());
    }

    #[test]
    fn a_media_ticket_opens_one_interview_and_is_no_access_token() {
        let t = tokens("s1");
        let user = UserId::new();
        let ticket = t.issue_media(user, "interview-1", now());
        assert_eq!(t.verify_media(&ticket, "interview-1").unwrap(), user);
        assert_eq!(t.verify_media(&ticket, "interview-2").unwrap_err(), TokenError::Invalid);
        assert_eq!(t.verify_access(&ticket).unwrap_err(), TokenError::Invalid);
        let access = t.issue_access(user, Role::Candidate, now());
        assert_eq!(t.verify_media(&access, "interview-1").unwrap_err(), TokenError::Invalid);
        let old = t.issue_media(user, "interview-1", now() - 2 * MEDIA_TICKET_SECS);
        assert_eq!(t.verify_media(&old, "interview-1").unwrap_err(), TokenError::Expired);
    }

    #[test]
    fn a_token_past_its_expiry_is_expired() {
        let t = tokens("s1");
        let old = t.issue_access(UserId::new(), Role::Candidate, now() - 3600);
        assert_eq!(t.verify_access(&old).unwrap_err(), TokenError::Expired);
    }

    #[test]
    fn refresh_tokens_are_unique_and_hashed() {
        let (a, hash_a) = new_refresh_token();
        let (b, _) = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(hash_a, hash_secret(&a));
        assert_eq!(hash_a.len(), 64);
    }

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }
}
